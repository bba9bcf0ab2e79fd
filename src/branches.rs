//! The branch offices that exist: the branches of the employers imported.
//! A branch named anywhere (a login, a token, an export) must be one of
//! them, so a typo (`Medna` for `MEDAN`) is refused instead of giving an
//! empty scope.

use crate::store::Db;
use anyhow::Result;

/// A branch name that is not one of the known branches.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown branch `{given}`; known branches: {}", known_list(.known))]
pub struct UnknownBranch {
    pub given: String,
    pub known: Vec<String>,
}

fn known_list(known: &[String]) -> String {
    if known.is_empty() {
        "none yet (import employers first)".to_owned()
    } else {
        known.join(", ")
    }
}

/// Every branch some employer belongs to, sorted.
pub async fn known(db: &Db) -> Result<Vec<String>> {
    let mut v: Vec<String> = db
        .query("SELECT DISTINCT branch FROM employers ORDER BY branch")
        .fetch_all_as::<(String,)>(db)
        .await?
        .into_iter()
        .map(|(b,)| b)
        .collect();
    v.retain(|b| !b.trim().is_empty());
    Ok(v)
}

/// `given` as the known branch it names (exactly; the stored spelling), or
/// [`UnknownBranch`] naming the known ones. Before any employer is imported
/// there is nothing to check against, and any name is accepted (a fresh
/// install creates its logins first).
pub async fn check(db: &Db, given: &str) -> Result<std::result::Result<String, UnknownBranch>> {
    let given = given.trim();
    let known = known(db).await?;
    if known.is_empty() || known.iter().any(|b| b == given) {
        return Ok(Ok(given.to_owned()));
    }
    Ok(Err(UnknownBranch {
        given: given.to_owned(),
        known,
    }))
}
