// card-relay in Electron: the main process lets the page's WebUSB reach smart card readers.
//
// Chrome treats USB interface class 0x0B (smart card) as protected: claimInterface() on it
// rejects with SecurityError in an ordinary page. Electron lets the application decide:
// - setUSBProtectedClassesHandler: the classes that stay protected; "smart-card" is removed
//   from the list, every other class stays protected.
// - select-usb-device: navigator.usb.requestDevice() has no chooser in Electron; the first
//   reader that matches the page's filters is chosen.
// - setDevicePermissionHandler / setPermissionCheckHandler: the application's own page may
//   use the readers it was given, nothing else may.
const { app, BrowserWindow, session } = require("electron");
const path = require("node:path");

const APP_ORIGIN = "file://";

function fromOurPage(origin) {
  return typeof origin === "string" && origin.startsWith(APP_ORIGIN);
}

function configure(ses) {
  ses.setUSBProtectedClassesHandler(({ protectedClasses }) =>
    protectedClasses.filter((usbClass) => usbClass !== "smart-card"),
  );
  ses.setPermissionCheckHandler((_webContents, permission, requestingOrigin) =>
    permission === "usb" && fromOurPage(requestingOrigin),
  );
  ses.setDevicePermissionHandler((details) =>
    details.deviceType === "usb" && fromOurPage(details.origin),
  );
  ses.on("select-usb-device", (event, details, callback) => {
    event.preventDefault();
    // The list holds the devices that match the page's filters: CardReader.request() asks
    // for class 0x0B and the known vendor-class (0xFF) CCID readers (CCID_FILTERS).
    callback(details.deviceList[0]?.deviceId);
  });
}

app.whenReady().then(() => {
  configure(session.defaultSession);
  const window = new BrowserWindow({
    width: 900,
    height: 700,
    webPreferences: {
      contextIsolation: true,
      nodeIntegration: false,
      sandbox: true,
    },
  });
  window.loadFile(path.join(__dirname, "index.html"));
});

app.on("window-all-closed", () => app.quit());
