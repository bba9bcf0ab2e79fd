use super::ParseError;
use std::fmt;

/// The employer's registration number (Nomor Pendaftaran Perusahaan) as SMILE
/// writes it: 4–20 digits and capital letters, optionally `-` and a division
/// code. Opaque: leading zeros are kept.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct Npp(String);

impl Npp {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let s = raw.trim();
        if s.is_empty() {
            return Err(ParseError::new("NPP is empty"));
        }
        let (main, division) = match s.split_once('-') {
            Some((m, d)) => (m, Some(d)),
            None => (s, None),
        };
        let code_ok = |c: char| c.is_ascii_digit() || c.is_ascii_uppercase();
        if !(4..=20).contains(&main.len()) || !main.chars().all(code_ok) {
            return Err(ParseError::new(format!(
                "`{s}` is not an NPP (4 to 20 digits or capital letters, optionally -DIVISION)"
            )));
        }
        if let Some(d) = division {
            if d.is_empty() || d.len() > 10 || !d.chars().all(code_ok) {
                return Err(ParseError::new(format!(
                    "`{s}` has an invalid division code after `-`"
                )));
            }
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Npp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_leading_zeros_and_division() {
        assert_eq!(Npp::parse("00012345").unwrap().as_str(), "00012345");
        assert_eq!(Npp::parse("AB123456-01").unwrap().as_str(), "AB123456-01");
    }

    #[test]
    fn rejects_lowercase_short_long_and_junk() {
        for bad in [
            "",
            "123",
            "ab123456",
            "1234 5678",
            "123456789012345678901",
            "1234-",
            "1234-x",
        ] {
            assert!(Npp::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
