//! Re-embeds the migrations (`embed_migrations!` in `src/store`) when a file
//! under `migrations/` changes: the macro reads them at compile time, and
//! cargo does not otherwise know it depends on them.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
