//! Domain types as columns: each encodes and decodes itself on both
//! backends, so row structs hold `Npp`, `WaId`, `Tz`, `Money`, `Stage`…
//! instead of strings parsed again at every use.
//!
//! A text-backed type is stored as its canonical text and parsed on the way
//! out; a value the parser refuses is a decode error naming the column, not
//! a silently wrong value.

use crate::domain::{CaseStatus, Money, Npp, Period, QuietReason, Stage, WaId};

/// A type stored as text: its canonical form and its parser.
pub trait TextColumn: Sized {
    fn to_text(&self) -> String;
    fn from_text(s: &str) -> Result<Self, String>;
}

/// A type stored as a 64-bit integer.
pub trait IntColumn: Sized {
    fn to_int(&self) -> i64;
    fn from_int(n: i64) -> Result<Self, String>;
}

/// Implements sqlx's `Type`, `Encode` and `Decode` on both backends for
/// types that implement [`TextColumn`] (`text`) or [`IntColumn`] (`int`).
#[macro_export]
macro_rules! store_column {
    (text: $($t:ty),+ $(,)?) => { $( $crate::store_column!(@impl $t, String, $crate::store::TextColumn, to_text, |s: String| <$t as $crate::store::TextColumn>::from_text(&s)); )+ };
    (int: $($t:ty),+ $(,)?) => { $( $crate::store_column!(@impl $t, i64, $crate::store::IntColumn, to_int, <$t as $crate::store::IntColumn>::from_int); )+ };
    (@impl $t:ty, $repr:ty, $tr:path, $to:ident, $from:expr) => {
        $crate::store_column!(@backend $t, $repr, $tr, $to, $from, ::sqlx::Sqlite);
        $crate::store_column!(@backend $t, $repr, $tr, $to, $from, ::sqlx::Postgres);
    };
    (@backend $t:ty, $repr:ty, $tr:path, $to:ident, $from:expr, $db:ty) => {
        impl ::sqlx::Type<$db> for $t {
            fn type_info() -> <$db as ::sqlx::Database>::TypeInfo {
                <$repr as ::sqlx::Type<$db>>::type_info()
            }
            fn compatible(ty: &<$db as ::sqlx::Database>::TypeInfo) -> bool {
                <$repr as ::sqlx::Type<$db>>::compatible(ty)
            }
        }
        impl<'q> ::sqlx::Encode<'q, $db> for $t {
            fn encode_by_ref(
                &self,
                buf: &mut <$db as ::sqlx::Database>::ArgumentBuffer<'q>,
            ) -> Result<::sqlx::encode::IsNull, ::sqlx::error::BoxDynError> {
                <$repr as ::sqlx::Encode<'q, $db>>::encode(<$t as $tr>::$to(self), buf)
            }
        }
        impl<'r> ::sqlx::Decode<'r, $db> for $t {
            fn decode(
                value: <$db as ::sqlx::Database>::ValueRef<'r>,
            ) -> Result<Self, ::sqlx::error::BoxDynError> {
                let raw = <$repr as ::sqlx::Decode<'r, $db>>::decode(value)?;
                ($from)(raw).map_err(Into::into)
            }
        }
    };
}

impl TextColumn for Npp {
    fn to_text(&self) -> String {
        self.as_str().to_owned()
    }
    fn from_text(s: &str) -> Result<Self, String> {
        Npp::parse(s).map_err(|e| e.to_string())
    }
}

impl TextColumn for WaId {
    fn to_text(&self) -> String {
        self.as_str().to_owned()
    }
    fn from_text(s: &str) -> Result<Self, String> {
        WaId::parse(s).map_err(|e| e.to_string())
    }
}

impl TextColumn for Period {
    fn to_text(&self) -> String {
        self.to_string()
    }
    fn from_text(s: &str) -> Result<Self, String> {
        Period::parse(s).map_err(|e| e.to_string())
    }
}

impl TextColumn for Stage {
    fn to_text(&self) -> String {
        self.as_str().to_owned()
    }
    fn from_text(s: &str) -> Result<Self, String> {
        s.parse()
    }
}

impl TextColumn for CaseStatus {
    fn to_text(&self) -> String {
        self.as_str().to_owned()
    }
    fn from_text(s: &str) -> Result<Self, String> {
        s.parse()
    }
}

impl TextColumn for QuietReason {
    fn to_text(&self) -> String {
        self.as_str().to_owned()
    }
    fn from_text(s: &str) -> Result<Self, String> {
        s.parse()
    }
}

/// An employer's IANA zone, e.g. `Asia/Makassar`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Zone(pub chrono_tz::Tz);

impl serde::Serialize for Zone {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.name())
    }
}

impl TextColumn for Zone {
    fn to_text(&self) -> String {
        self.0.name().to_owned()
    }
    fn from_text(s: &str) -> Result<Self, String> {
        s.parse::<chrono_tz::Tz>()
            .map(Zone)
            .map_err(|_| format!("`{s}` is not an IANA time zone"))
    }
}

impl IntColumn for Money {
    fn to_int(&self) -> i64 {
        self.minor()
    }
    fn from_int(n: i64) -> Result<Self, String> {
        Ok(Money::from_minor(n))
    }
}

crate::store_column!(text: Npp, WaId, Period, Stage, CaseStatus, QuietReason, Zone);
crate::store_column!(int: Money);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreError;
    use chrono::Utc;

    #[derive(Debug, sqlx::FromRow)]
    struct EmployerRow {
        npp: Npp,
        wa_id: Option<WaId>,
        timezone: Zone,
    }

    #[tokio::test]
    async fn domain_types_round_trip_and_unique_keys_are_conflicts() -> anyhow::Result<()> {
        for t in crate::testing::all().await? {
            let db = &t.db;
            let npp = Npp::parse("00012345-01")?;
            let wa = WaId::parse("081234567890")?;
            let insert = || {
                db.query(
                    "INSERT INTO employers (npp, name, branch, wa_id, timezone, created_at, updated_at) \
                     VALUES ($1, 'PT Uji', 'PEKANBARU', $2, $3, $4, $4)",
                )
                .bind(npp.clone())
                .bind(Some(wa.clone()))
                .bind(Zone(chrono_tz::Asia::Makassar))
                .bind(Utc::now())
            };
            insert().execute(db).await?;
            let err = insert().execute(db).await.unwrap_err();
            assert!(err.is_conflict(), "{}: {err}", t.name);

            let row: EmployerRow = db
                .query("SELECT npp, wa_id, timezone FROM employers")
                .fetch_one_as(db)
                .await?;
            assert_eq!(row.npp, npp, "{}", t.name);
            assert_eq!(row.wa_id, Some(wa.clone()), "{}", t.name);
            assert_eq!(row.timezone, Zone(chrono_tz::Asia::Makassar), "{}", t.name);

            let n: i64 = db
                .query("SELECT count(*) FROM employers")
                .fetch_scalar(db)
                .await?;
            assert_eq!(n, 1, "{}", t.name);
            let none = db
                .query("SELECT npp, wa_id, timezone FROM employers WHERE id = -1")
                .fetch_one_as::<EmployerRow>(db)
                .await;
            assert!(matches!(none, Err(StoreError::NotFound)), "{}", t.name);

            // A stored value the parser refuses is an error, never a wrong value.
            db.query("UPDATE employers SET timezone = 'Mars/Olympus'")
                .execute(db)
                .await?;
            let bad = db
                .query("SELECT npp, wa_id, timezone FROM employers")
                .fetch_one_as::<EmployerRow>(db)
                .await;
            assert!(
                matches!(bad, Err(StoreError::Decode(_))),
                "{}: {bad:?}",
                t.name
            );
        }
        Ok(())
    }
}
