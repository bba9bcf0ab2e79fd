use super::ParseError;
use std::fmt;

/// A WhatsApp id of an Indonesian mobile number: digits with the country code
/// and no `+` (`628…`), as Meta's `wa_id` is written.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct WaId(String);

impl WaId {
    /// Accepts `08…`, `+628…`, `628…` (spaces, dashes, dots and parentheses
    /// ignored). Landlines (`021…`), foreign numbers and junk are rejected.
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let cleaned: String = raw
            .trim()
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
            .collect();
        let digits = cleaned.strip_prefix('+').unwrap_or(&cleaned);
        if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(ParseError::new(format!(
                "`{}` is not a phone number",
                raw.trim()
            )));
        }
        let national = if let Some(rest) = digits.strip_prefix("62") {
            rest
        } else if let Some(rest) = digits.strip_prefix('0') {
            if cleaned.starts_with('+') {
                return Err(ParseError::new(format!(
                    "`{}` is not a phone number",
                    raw.trim()
                )));
            }
            rest
        } else {
            return Err(ParseError::new(format!(
                "`{}` is not an Indonesian mobile number (write 08…, +628… or 628…)",
                raw.trim()
            )));
        };
        // Mobile numbers start with 8 followed by an operator digit other
        // than 4 (there is no 084x range); 9 to 12 digits after the 8-prefix.
        let b = national.as_bytes();
        let mobile = b.len() >= 9
            && b.len() <= 12
            && b[0] == b'8'
            && matches!(b[1], b'1'..=b'3' | b'5'..=b'9');
        if !mobile {
            return Err(ParseError::new(format!(
                "`{}` is not an Indonesian mobile number (landline or wrong length)",
                raw.trim()
            )));
        }
        Ok(Self(format!("62{national}")))
    }

    /// A number Meta already normalised (`wa_id` in webhooks); trusted as is
    /// apart from requiring digits, since Meta keys conversations on it.
    pub fn from_meta(raw: &str) -> Result<Self, ParseError> {
        if raw.is_empty() || raw.len() > 20 || !raw.chars().all(|c| c.is_ascii_digit()) {
            return Err(ParseError::new("wa_id must be digits"));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `6281******789`: enough for an operator to tell numbers apart, not
    /// enough to call anyone. Used wherever a number reaches a log line.
    pub fn masked(&self) -> String {
        mask_phone(&self.0)
    }
}

/// Masks every digit but the first four and the last three.
pub fn mask_phone(s: &str) -> String {
    let n = s.chars().count();
    s.chars()
        .enumerate()
        .map(|(i, c)| if i < 4 || i + 3 >= n { c } else { '*' })
        .collect()
}

impl fmt::Display for WaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_the_three_written_forms() {
        for raw in [
            "081234567890",
            "+6281234567890",
            "6281234567890",
            "0812-3456-7890",
            "+62 812 3456 7890",
        ] {
            assert_eq!(WaId::parse(raw).unwrap().as_str(), "6281234567890", "{raw}");
        }
    }

    #[test]
    fn rejects_landlines_foreign_and_junk() {
        for bad in [
            "0215551234",
            "+6221555123",
            "+6591234567",
            "08123",
            "0812345678901234",
            "abc",
            "",
            "+0812345678",
            "0841234567",
        ] {
            assert!(WaId::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn masks_middle_digits() {
        assert_eq!(
            WaId::parse("081234567890").unwrap().masked(),
            "6281******890"
        );
    }
}
