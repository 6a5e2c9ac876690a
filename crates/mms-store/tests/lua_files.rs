//! The store's Lua lives in files (issue 10.1): no Rust source of the store holds script text,
//! and every script file under `lua/` is assembled into some script (none left behind, unused).

use std::fs;
use std::path::{Path, PathBuf};

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn files_under(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files_under(&path, ext, out);
        } else if path.extension().is_some_and(|e| e == ext) {
            out.push(path);
        }
    }
}

fn rust_sources() -> Vec<(PathBuf, String)> {
    let mut files = Vec::new();
    files_under(&crate_dir().join("src"), "rs", &mut files);
    files
        .into_iter()
        .map(|path| {
            let text = fs::read_to_string(&path).unwrap();
            (path, text)
        })
        .collect()
}

/// The queue's scripts move to `lua/queue/` in a change of their own; until then `queue.rs` is the
/// one file allowed to hold Lua.
const NOT_YET_MOVED: &[&str] = &["queue.rs"];

#[test]
fn no_rust_source_holds_lua() {
    for (path, text) in rust_sources() {
        let name = path.file_name().unwrap().to_str().unwrap();
        if NOT_YET_MOVED.contains(&name) {
            continue;
        }
        for needle in ["redis.call(", "redis.pcall(", "local function", "KEYS[1]"] {
            assert!(
                !text.contains(needle),
                "{} holds Lua ({needle:?}): move it to a file under lua/",
                path.display()
            );
        }
    }
}

#[test]
fn every_script_file_is_used() {
    let sources: String = rust_sources().into_iter().map(|(_, t)| t).collect();
    let lua_dir = crate_dir().join("lua");
    let mut scripts = Vec::new();
    files_under(&lua_dir, "lua", &mut scripts);
    assert!(scripts.len() >= 16, "found {} scripts", scripts.len());
    for script in scripts {
        let relative = script
            .strip_prefix(&lua_dir)
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        if relative.starts_with("queue/") {
            continue; // the queue's own, used by queue.rs once moved
        }
        assert!(
            sources.contains(&format!("\"{relative}\"")),
            "lua/{relative} is not assembled into any script"
        );
    }
}
