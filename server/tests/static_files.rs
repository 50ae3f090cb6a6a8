//! The server serves the demo folder and the package folders over real HTTP on loopback.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};

use card_relay_server::{bind, router, ServerConfig};

fn get(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn serves_www_and_pkg() {
    let dir = std::env::temp_dir().join(format!("card-relay-static-{}", std::process::id()));
    let www = dir.join("www");
    let pkg = dir.join("pkg");
    let pkg_sim = dir.join("pkg-sim");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::create_dir_all(&pkg).unwrap();
    std::fs::create_dir_all(&pkg_sim).unwrap();
    std::fs::write(www.join("index.html"), "<p>demo page</p>").unwrap();
    std::fs::write(pkg.join("card_relay.js"), "export default 1;").unwrap();
    std::fs::write(pkg_sim.join("card_relay.js"), "export default 2;").unwrap();

    let (listener, addr) = bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .await
        .unwrap();
    let app = router(&ServerConfig {
        www,
        pkg,
        pkg_sim,
        ..ServerConfig::default()
    });
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let (index, module, sim_module, missing) = tokio::task::spawn_blocking(move || {
        (
            get(addr, "/"),
            get(addr, "/pkg/card_relay.js"),
            get(addr, "/pkg-sim/card_relay.js"),
            get(addr, "/nope.txt"),
        )
    })
    .await
    .unwrap();
    assert!(index.starts_with("HTTP/1.1 200"), "{index}");
    assert!(index.contains("<p>demo page</p>"));
    assert!(module.starts_with("HTTP/1.1 200"), "{module}");
    assert!(
        module
            .to_ascii_lowercase()
            .contains("content-type: text/javascript"),
        "{module}"
    );
    assert!(sim_module.starts_with("HTTP/1.1 200"), "{sim_module}");
    assert!(sim_module.contains("export default 2;"), "{sim_module}");
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");

    server.abort();
    let _ = std::fs::remove_dir_all(&dir);
}
