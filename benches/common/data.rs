//! The generated workspace of the large-build-dir benches (`throughput`,
//! `worktree`): `DATA_CRATES` libraries whose build scripts write
//! `DATA_MIB` MiB of data of mixed compressibility (from all text to all
//! random, by crate) into `OUT_DIR`, which the library embeds with
//! `include_bytes!`; `SMALL_CRATES` small libraries, some with build
//! scripts, for the many small files of a real build dir; and a binary over
//! all of them. Each data byte sits in the build dir three times (the build
//! script's output, the rlib, the binary), so the profile dir is over 2 GB
//! while the build takes a couple of minutes. No network is needed.

use std::fs;
use std::path::Path;
use std::process::Command;

pub const DATA_CRATES: usize = 24;
pub const DATA_MIB: usize = 32;
pub const SMALL_CRATES: usize = 40;

/// Runs `script` with bash in `dir`, with no target dir from the caller.
pub fn sh(dir: &Path, script: &str) {
    let st = Command::new("bash")
        .args(["-ec", script])
        .current_dir(dir)
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_BUILD_DIR")
        .status()
        .unwrap();
    assert!(st.success(), "failed: {script}");
}

/// The generated workspace, a git repository at `root`.
pub fn generate(root: &Path) {
    let mut members = Vec::new();
    let mut deps = String::new();
    let mut uses = String::new();
    for i in 0..DATA_CRATES {
        let name = format!("data{i:02}");
        let dir = root.join(&name);
        fs::create_dir_all(dir.join("src")).unwrap();
        fs::write(
            dir.join("Cargo.toml"),
            format!("[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n"),
        )
        .unwrap();
        // Chunks of 64 KiB, chunk `c` random when `c % 4 < i % 5`: from
        // all text (crate 0) to all random (crate 4), and again.
        fs::write(
            dir.join("build.rs"),
            format!(
                r#"use std::io::Write;
fn main() {{
    println!("cargo:rerun-if-changed=build.rs");
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").unwrap()).join("data.bin");
    let mut f = std::io::BufWriter::new(std::fs::File::create(out).unwrap());
    let mut x: u64 = {seed};
    let mut chunk = vec![0u8; 64 << 10];
    for c in 0..({mib} * 16) {{
        if c % 4 < {random} {{
            for b in chunk.chunks_mut(8) {{
                x ^= x << 13; x ^= x >> 7; x ^= x << 17;
                b.copy_from_slice(&x.to_le_bytes()[..b.len()]);
            }}
        }} else {{
            let mut line = Vec::new();
            let mut n = 0usize;
            while line.len() < chunk.len() {{
                write!(line, "chunk {{c}} line {{n}}: the quick brown fox\n").unwrap();
                n += 1;
            }}
            let len = chunk.len();
            chunk.copy_from_slice(&line[..len]);
        }}
        f.write_all(&chunk).unwrap();
    }}
}}
"#,
                seed = 0x9E37_79B9_7F4A_7C15u64 ^ (i as u64 + 1),
                mib = DATA_MIB,
                random = i % 5,
            ),
        )
        .unwrap();
        fs::write(
            dir.join("src/lib.rs"),
            "pub static DATA: &[u8] = include_bytes!(concat!(env!(\"OUT_DIR\"), \"/data.bin\"));\n\
             pub fn sum() -> u64 { DATA.iter().step_by(4096).map(|&b| b as u64).sum() }\n",
        )
        .unwrap();
        members.push(name.clone());
        deps.push_str(&format!("{name} = {{ path = \"../{name}\" }}\n"));
        uses.push_str(&format!("    total += {name}::sum();\n"));
    }
    for i in 0..SMALL_CRATES {
        let name = format!("small{i:02}");
        let dir = root.join(&name);
        fs::create_dir_all(dir.join("src")).unwrap();
        let mut manifest =
            format!("[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n");
        let mut lib = String::new();
        if i % 4 == 0 {
            fs::write(
                dir.join("build.rs"),
                "fn main() {\n    println!(\"cargo:rerun-if-changed=build.rs\");\n    \
                 let out = std::path::PathBuf::from(std::env::var_os(\"OUT_DIR\").unwrap());\n    \
                 std::fs::write(out.join(\"gen.rs\"), \"pub fn generated() -> u32 { 7 }\").unwrap();\n}\n",
            )
            .unwrap();
            lib.push_str("include!(concat!(env!(\"OUT_DIR\"), \"/gen.rs\"));\n");
        } else {
            lib.push_str("pub fn generated() -> u32 { 3 }\n");
        }
        if i > 0 {
            let prev = format!("small{:02}", i - 1);
            manifest.push_str(&format!(
                "\n[dependencies]\n{prev} = {{ path = \"../{prev}\" }}\n"
            ));
            lib.push_str(&format!(
                "pub fn chain() -> u32 {{ generated() + {prev}::chain() }}\n"
            ));
        } else {
            lib.push_str("pub fn chain() -> u32 { generated() }\n");
        }
        for f in 0..20 {
            lib.push_str(&format!(
                "pub fn f{f}(x: u32) -> u32 {{ x.wrapping_mul({f} + 1).rotate_left({f}) }}\n"
            ));
        }
        fs::write(dir.join("Cargo.toml"), manifest).unwrap();
        fs::write(dir.join("src/lib.rs"), lib).unwrap();
        members.push(name);
    }
    let last = format!("small{:02}", SMALL_CRATES - 1);
    deps.push_str(&format!("{last} = {{ path = \"../{last}\" }}\n"));
    fs::create_dir_all(root.join("app/src")).unwrap();
    fs::write(
        root.join("app/Cargo.toml"),
        format!(
            "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\n{deps}"
        ),
    )
    .unwrap();
    fs::write(
        root.join("app/src/main.rs"),
        format!(
            "fn main() {{\n    let mut total = 0u64;\n{uses}    println!(\"{{total}} {{}}\", {last}::chain());\n}}\n"
        ),
    )
    .unwrap();
    members.push("app".into());
    let list: Vec<String> = members.iter().map(|m| format!("\"{m}\"")).collect();
    fs::write(
        root.join("Cargo.toml"),
        format!(
            "[workspace]\nresolver = \"2\"\nmembers = [{}]\n",
            list.join(", ")
        ),
    )
    .unwrap();
    fs::write(root.join(".gitignore"), "/target\n").unwrap();
    sh(
        root,
        "git init -q && git add -A && git -c user.name=b -c user.email=b@b commit -qm base",
    );
}
