// `sqlx::migrate!` embeds the migration files at compile time, but on stable
// Rust the macro cannot tell cargo about them: without this, a build that
// changes only a migration keeps the old set.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
