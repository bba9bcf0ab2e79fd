//! `X-Hub-Signature-256` verification: HMAC-SHA256 of the exact raw body.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Why a webhook body is not accepted as Meta's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("no app secret configured: refusing every webhook")]
    NoSecret,
    #[error("missing X-Hub-Signature-256 header")]
    Missing,
    #[error("malformed X-Hub-Signature-256 header")]
    Malformed,
    #[error("signature does not match the body")]
    Mismatch,
}

/// Checks `header` (`sha256=<hex>`) against HMAC-SHA256(`app_secret`, `raw_body`).
///
/// The body must be the bytes as received: Meta escapes non-ASCII as
/// `\uXXXX`, so any re-serialisation breaks the signature. The comparison is
/// constant-time (`verify_slice`). An empty secret fails closed rather than
/// accepting bodies signed with an empty key.
pub fn verify_signature(
    app_secret: &[u8],
    raw_body: &[u8],
    header: Option<&str>,
) -> Result<(), SignatureError> {
    if app_secret.is_empty() {
        return Err(SignatureError::NoSecret);
    }
    let header = header.map(str::trim).ok_or(SignatureError::Missing)?;
    if header.is_empty() {
        return Err(SignatureError::Missing);
    }
    let (scheme, hex_digest) = header.split_once('=').ok_or(SignatureError::Malformed)?;
    if !scheme.trim().eq_ignore_ascii_case("sha256") {
        return Err(SignatureError::Malformed);
    }
    let expected = hex::decode(hex_digest.trim()).map_err(|_| SignatureError::Malformed)?;
    if expected.len() != 32 {
        return Err(SignatureError::Malformed);
    }
    let mut mac =
        Hmac::<Sha256>::new_from_slice(app_secret).map_err(|_| SignatureError::NoSecret)?;
    mac.update(raw_body);
    mac.verify_slice(&expected)
        .map_err(|_| SignatureError::Mismatch)
}

/// The header value Meta would send for `raw_body`; for tests and the simulator.
pub fn sign(app_secret: &[u8], raw_body: &[u8]) -> String {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(app_secret).expect("HMAC accepts any key length");
    mac.update(raw_body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}
