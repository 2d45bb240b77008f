//! `cargo xtask readme`: the README's programs that stand for a file of
//! the repository are that file, word for word, so what a newcomer copies
//! is what CI builds and runs. A block follows the line
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
        println!("README.md: every program that stands for a file is that file");
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `line: what is wrong` for each marked block that is not its file.
fn check(readme: &str, read: &dyn Fn(&str) -> Option<String>) -> Vec<String> {
    let lines: Vec<&str> = readme.lines().collect();
    let mut problems = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        let Some(rest) = line.trim().strip_prefix(MARK) else { continue };
        let path = rest.split_whitespace().next().unwrap_or_default();
        let Some(open) = lines.get(index + 1).filter(|l| l.starts_with("```rust")) else {
            problems.push(format!("{}: the mark for {path} is not followed by a ```rust block", index + 1));
            continue;
        };
        let _ = open;
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
        if body.iter().any(|l| *l == "#" || l.starts_with("# ")) {
            problems.push(format!("{}: the block for {path} has hidden lines (`# `)", index + 2));
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
        let hidden = readme.replace("fn main() {}\n", "# fn main() {}\n");
        assert!(check(&hidden, &|_| Some("# fn main() {}\n".into()))[0].contains("hidden lines"));
    }
}
