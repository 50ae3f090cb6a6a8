//! The daemon's two images: a 16×16 green (passed) or red (failed) PNG, made here
//! (PNG, ISO/IEC 15948 §5: signature, IHDR, IDAT, IEND, each chunk's CRC-32 over its type
//! and data; the IDAT a zlib stream, RFC 1950, of one stored deflate block, RFC 1951 §3.2.4).

/// The side of the square.
const SIZE: u32 = 16;

fn crc32(bytes: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFF_u32;
    for &b in bytes {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 == 1 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

fn adler32(bytes: &[u8]) -> u32 {
    let (mut a, mut b) = (1_u32, 0_u32);
    for &x in bytes {
        a = (a + u32::from(x)) % 65_521;
        b = (b + a) % 65_521;
    }
    (b << 16) | a
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    let length = u32::try_from(data.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&length.to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(out.get(start..).unwrap_or_default());
    out.extend_from_slice(&crc.to_be_bytes());
}

/// A square of one RGB colour.
fn solid([r, g, b]: [u8; 3]) -> Vec<u8> {
    // Each row: filter type 0 (None), then the pixels.
    let mut row = vec![0];
    for _ in 0..SIZE {
        row.extend_from_slice(&[r, g, b]);
    }
    let pixels = row.repeat(SIZE as usize);
    // 16 rows of 49 bytes: one stored block (at most 65535 bytes).
    let len = u16::try_from(pixels.len()).unwrap_or(u16::MAX);
    let mut zlib = vec![0x78, 0x01, 0x01];
    zlib.extend_from_slice(&len.to_le_bytes());
    zlib.extend_from_slice(&(!len).to_le_bytes());
    zlib.extend_from_slice(&pixels);
    zlib.extend_from_slice(&adler32(&pixels).to_be_bytes());
    let mut header = Vec::new();
    header.extend_from_slice(&SIZE.to_be_bytes());
    header.extend_from_slice(&SIZE.to_be_bytes());
    header.extend_from_slice(&[8, 2, 0, 0, 0]); // 8 bits, truecolour, deflate, adaptive, none
    let mut out = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
    chunk(&mut out, b"IHDR", &header);
    chunk(&mut out, b"IDAT", &zlib);
    chunk(&mut out, b"IEND", &[]);
    out
}

/// The image answering a passed update.
pub fn passed() -> Vec<u8> {
    solid([0x2E, 0xA0, 0x43])
}

/// The image answering a failed or refused one.
pub fn failed() -> Vec<u8> {
    solid([0xD0, 0x30, 0x30])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_match_their_specifications() {
        // RFC 1952 §8 / PNG annex D check value, RFC 1950 §9's example.
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(adler32(b"Wikipedia"), 0x11E6_0398);
    }
}
