//! `sqlx::migrate!` embeds the migrations at build time; without this a new migration file
//! would not rebuild the crate and would be missed.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
