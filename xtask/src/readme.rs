//! `cargo xtask readme`: every Rust block of the README is a whole program
//! as it is shown (a `fn main`, no lines hidden with `# `): what a newcomer
//! copies compiles (the blocks are doc-tested through the ext crate). And a
//! program that stands for a file of the repository is that file, word for
//! word; such a block follows the line
//! `<!-- the file <path> (cargo xtask readme checks they agree) -->`.

use std::path::Path;
use std::process::ExitCode;

const MARK: &str = "<!-- the file ";

pub(crate) fn run(root: &Path) -> ExitCode {
    let readme = match std::fs::read_to_string(root.join("README.md")) {
        Ok(text) => text,
        Err(error) => {
            eprintln!("error: README.md: {error}");
            return ExitCode::FAILURE;
        }
    };
    let problems = check(&readme, &|path| std::fs::read_to_string(root.join(path)).ok());
    for problem in &problems {
        eprintln!("error: README.md:{problem}");
    }
    if problems.is_empty() {
        println!("README.md: every Rust block is a whole program, and every one that stands for a file is that file");
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `line: what is wrong` for each Rust block that is not a whole program,
/// and each marked block that is not its file.
fn check(readme: &str, read: &dyn Fn(&str) -> Option<String>) -> Vec<String> {
    let lines: Vec<&str> = readme.lines().collect();
    let mut problems = Vec::new();
    let mut index = 0;
    while index < lines.len() {
        if lines[index].starts_with("```rust") {
            let body: Vec<&str> = lines[index + 1..].iter().take_while(|l| !l.starts_with("```")).copied().collect();
            if let Some(hidden) = body.iter().position(|l| *l == "#" || l.starts_with("# ")) {
                problems.push(format!(
                    "{}: a line hidden with `# `: a reader copies the block without it; show the whole program",
                    index + 2 + hidden
                ));
            }
            if !body.iter().any(|l| l.contains("fn main")) {
                problems.push(format!("{}: the block has no `fn main`: show it as a whole program", index + 1));
            }
            index += body.len() + 1;
        }
        index += 1;
    }
    for (index, line) in lines.iter().enumerate() {
        let Some(rest) = line.trim().strip_prefix(MARK) else { continue };
        let path = rest.split_whitespace().next().unwrap_or_default();
        if !lines.get(index + 1).is_some_and(|l| l.starts_with("```rust")) {
            problems.push(format!("{}: the mark for {path} is not followed by a ```rust block", index + 1));
            continue;
        }
        let body: Vec<&str> = lines[index + 2..].iter().take_while(|l| !l.starts_with("```")).copied().collect();
        let shown = body.iter().map(|l| format!("{l}\n")).collect::<String>();
        match read(path) {
            None => problems.push(format!("{}: {path} does not exist", index + 1)),
            Some(file) if file != shown => problems.push(format!(
                "{}: the block differs from {path}; copy the file into the README (or the README into the file)",
                index + 2
            )),
            Some(_) => {}
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marked_block_must_be_its_file() {
        let readme =
            "text\n<!-- the file a.rs (cargo xtask readme checks they agree) -->\n```rust,no_run\nfn main() {}\n```\n";
        assert!(check(readme, &|_| Some("fn main() {}\n".into())).is_empty());
        let differs = check(readme, &|_| Some("fn main() { run() }\n".into()));
        assert_eq!(
            differs,
            ["3: the block differs from a.rs; copy the file into the README (or the README into the file)"]
        );
        assert_eq!(check(readme, &|_| None), ["2: a.rs does not exist"]);
    }

    #[test]
    fn every_rust_block_is_a_whole_program() {
        let readme = "```rust\nuse x::Y;\n# fn main() {\nlet y = Y;\n# }\n```\n\n```rust\nlet z = 1;\n```\n\n```sh\n# a comment\n```\n";
        assert_eq!(
            check(readme, &|_| None),
            [
                "3: a line hidden with `# `: a reader copies the block without it; show the whole program",
                "8: the block has no `fn main`: show it as a whole program",
            ]
        );
    }
}
