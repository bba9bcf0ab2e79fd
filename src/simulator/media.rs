//! Media the simulator holds: uploads through Meta's media endpoint and the
//! photos employers send (a transfer receipt), served by id.

use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Clone)]
pub(super) struct Media {
    pub mime: String,
    pub sha256: String,
    pub bytes: Arc<Vec<u8>>,
}

#[derive(Default)]
pub(super) struct Store {
    files: Mutex<HashMap<String, Media>>,
    seq: AtomicU64,
}

impl Store {
    /// Keeps `bytes`; returns the media id (digits, as Meta's are).
    pub fn put(&self, mime: &str, bytes: Vec<u8>) -> String {
        let n = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        let id = format!("{}", 900_000_000_000_000u64 + n);
        let sha256 = hex::encode(Sha256::digest(&bytes));
        self.files.lock().expect("media lock").insert(
            id.clone(),
            Media {
                mime: mime.to_owned(),
                sha256,
                bytes: Arc::new(bytes),
            },
        );
        id
    }

    pub fn get(&self, id: &str) -> Option<Media> {
        self.files.lock().expect("media lock").get(id).cloned()
    }
}

/// The `file` part of a `multipart/form-data` upload: its content type and
/// bytes. Only what Meta's media upload sends is understood.
pub(super) fn parse_upload(content_type: &str, body: &[u8]) -> Option<(String, Vec<u8>)> {
    let boundary = content_type
        .split(';')
        .map(str::trim)
        .find_map(|p| p.strip_prefix("boundary="))?
        .trim_matches('"');
    let delimiter = format!("--{boundary}");
    let mut rest = body;
    while let Some(start) = find(rest, delimiter.as_bytes()) {
        rest = &rest[start + delimiter.len()..];
        let header_end = find(rest, b"\r\n\r\n")?;
        let headers = String::from_utf8_lossy(&rest[..header_end]).to_ascii_lowercase();
        let content = &rest[header_end + 4..];
        let end = find(content, format!("\r\n{delimiter}").as_bytes())?;
        if headers.contains("name=\"file\"") {
            let mime = headers
                .lines()
                .find_map(|l| l.trim().strip_prefix("content-type:"))
                .map(|m| m.trim().to_owned())
                .unwrap_or_else(|| "application/octet-stream".into());
            return Some((mime, content[..end].to_vec()));
        }
        rest = &content[end..];
    }
    None
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A small PNG that looks like a bank transfer receipt: a white slip with a
/// green header band and grey lines of "text".
pub(super) fn receipt_png() -> Vec<u8> {
    const W: usize = 180;
    const H: usize = 240;
    let mut raw = Vec::with_capacity((W * 3 + 1) * H);
    for y in 0..H {
        raw.push(0); // filter: none
        for x in 0..W {
            let margin = !(8..W - 8).contains(&x) || !(8..H - 8).contains(&y);
            let band = (8..44).contains(&y);
            let line = (60..200).contains(&y) && (y - 60) % 18 < 6 && x < 20 + (y * 7 % 130);
            let total = (206..222).contains(&y) && (90..W - 20).contains(&x);
            let rgb = if margin {
                [224, 230, 226]
            } else if band {
                [0, 128, 96]
            } else if total {
                [40, 40, 40]
            } else if line && x > 20 {
                [170, 170, 170]
            } else {
                [255, 255, 255]
            };
            raw.extend_from_slice(&rgb);
        }
    }
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&(W as u32).to_be_bytes());
    ihdr.extend_from_slice(&(H as u32).to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB
    chunk(&mut png, b"IHDR", &ihdr);
    chunk(&mut png, b"IDAT", &zlib_stored(&raw));
    chunk(&mut png, b"IEND", &[]);
    png
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// zlib with uncompressed deflate blocks: valid, and no compressor needed.
fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x78, 0x01];
    let chunks: Vec<&[u8]> = data.chunks(65_535).collect();
    for (i, c) in chunks.iter().enumerate() {
        out.push(u8::from(i + 1 == chunks.len()));
        let len = c.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(c);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in data {
        a = (a + u32::from(byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    out.extend_from_slice(&((b << 16) | a).to_be_bytes());
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_png_reference_value() {
        // The CRC of an empty IEND chunk in every PNG.
        assert_eq!(crc32(b"IEND"), 0xAE42_6082);
    }

    #[test]
    fn an_upload_yields_its_file_part() {
        let body = b"--xyz\r\nContent-Disposition: form-data; name=\"messaging_product\"\r\n\r\nwhatsapp\r\n--xyz\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\nPNGDATA\r\n--xyz--\r\n";
        let (mime, bytes) = parse_upload("multipart/form-data; boundary=xyz", body).unwrap();
        assert_eq!(mime, "image/png");
        assert_eq!(bytes, b"PNGDATA");
    }
}
