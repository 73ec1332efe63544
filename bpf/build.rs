//! Compiles the eBPF programs with clang into OUT_DIR (so a plain `cargo build` works), and runs
//! a host program built from the same header that prints every shared struct's layout for the
//! `layout` unit test.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

const CLANG: &str = "clang";

fn run(command: &mut Command) -> Result<Vec<u8>> {
    let output = command
        .output()
        .with_context(|| format!("running {command:?} (is clang installed? see .ci/run)"))?;
    if !output.status.success() {
        bail!(
            "{command:?} failed with {}:\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(output.stdout)
}

fn main() -> Result<()> {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").context("OUT_DIR is not set")?);
    let src = Path::new("src/bpf");
    println!("cargo::rerun-if-changed={}", src.display());

    for entry in std::fs::read_dir(src).context("listing src/bpf")? {
        let path = entry.context("listing src/bpf")?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some(stem) = name.strip_suffix(".bpf.c") else {
            continue;
        };
        run(Command::new(CLANG)
            .args([
                "-O2", "-g", "-target", "bpf", "-mcpu=v3", "-Wall", "-Werror",
            ])
            .arg("-I/usr/include/x86_64-linux-gnu")
            .arg("-I")
            .arg(src)
            .arg("-c")
            .arg(&path)
            .arg("-o")
            .arg(out_dir.join(format!("{stem}.bpf.o"))))?;
    }

    let layout = out_dir.join("layout");
    run(Command::new(CLANG)
        .args(["-O0", "-Wall", "-Werror", "-I"])
        .arg(src)
        .arg(src.join("layout.c"))
        .arg("-o")
        .arg(&layout))?;
    let printed = run(&mut Command::new(&layout))?;
    std::fs::write(out_dir.join("layout.txt"), printed).context("writing layout.txt")?;
    Ok(())
}
