//! `filevine-codegen gateway`: writes a typed client crate of a Filevine
//! API gateway description, wired to the SDK's tokens.
//!
//! ```text
//! filevine-codegen gateway --spec gateway.yaml --out filevine-gateway [--name filevine-gateway]
//!                          [--sdk-path ../filevine-identity-ext | --sdk-version 0.1]
//! ```
//!
//! The description may be Swagger 2.0 (the form Filevine publishes the
//! gateway's in; converted here) or OpenAPI 3.0 / 3.1.
//!
//! A binary of its own, not a `filevine-auth` command: the generator
//! builds progenitor, typify, syn and prettyplease, which everyone who
//! installs the command line tool for tokens would otherwise build too.
//! Over an existing crate it prints the SemVer verdict of the change.

use std::path::PathBuf;
use std::process::ExitCode;

use filevine_identity_codegen::{CrateOptions, SdkSource, Spec, gateway_crate, surface_diff};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match parse(&args) {
        Ok(command) => run(&command),
        Err(message) => {
            eprintln!("error: {message}\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

const USAGE: &str = "usage: filevine-codegen gateway --spec <description.yaml|json> --out <dir> [--name <crate>] \
[--sdk-path <path> | --sdk-version <version>] [--standalone] [--dev-dependency <line>]…";

struct Command {
    spec: PathBuf,
    out: PathBuf,
    options: CrateOptions,
}

fn parse(args: &[String]) -> Result<Command, String> {
    let Some((task, rest)) = args.split_first() else { return Err("no task given".into()) };
    if task == "--help" || task == "-h" {
        println!("{USAGE}");
        std::process::exit(0);
    }
    if task != "gateway" {
        return Err(format!("unknown task `{task}` (the one task is `gateway`)"));
    }
    let (mut spec, mut out, mut name, mut sdk, mut standalone) = (None, None, None, None, false);
    let mut dev_dependencies = Vec::new();
    let mut rest = rest.iter();
    while let Some(flag) = rest.next() {
        let mut value = || rest.next().cloned().ok_or_else(|| format!("`{flag}` needs a value"));
        match flag.as_str() {
            "--spec" => spec = Some(PathBuf::from(value()?)),
            "--out" => out = Some(PathBuf::from(value()?)),
            "--name" => name = Some(value()?),
            "--sdk-path" => sdk = Some(SdkSource::Path(value()?)),
            "--sdk-version" => sdk = Some(SdkSource::Version(value()?)),
            "--standalone" => standalone = true,
            "--dev-dependency" => dev_dependencies.push(value()?),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    let spec = spec.ok_or("`--spec` is required")?;
    let out = out.ok_or("`--out` is required")?;
    let name = match name {
        Some(name) => name,
        None => out.file_name().and_then(|n| n.to_str()).unwrap_or("filevine-gateway").to_owned(),
    };
    let sdk = sdk.unwrap_or(SdkSource::Version(env!("CARGO_PKG_VERSION").to_owned()));
    Ok(Command { spec, out, options: CrateOptions { name, sdk, standalone, dev_dependencies } })
}

fn run(command: &Command) -> ExitCode {
    let label = command.spec.file_name().and_then(|n| n.to_str()).unwrap_or("description").to_owned();
    let built = Spec::read(&command.spec, label).and_then(|spec| gateway_crate(&spec, &command.options));
    let built = match built {
        Ok(built) => built,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    let previous = std::fs::read_to_string(command.out.join("src/generated.rs")).ok();
    for (path, content) in &built.files {
        let target = command.out.join(path);
        let written =
            target.parent().map_or(Ok(()), std::fs::create_dir_all).and_then(|()| std::fs::write(&target, content));
        if let Err(error) = written {
            eprintln!("error: cannot write {}: {error}", target.display());
            return ExitCode::FAILURE;
        }
    }
    let generated = &built.generated;
    println!(
        "wrote {} ({} lines generated in {} ms; {} change(s) to the description, {} warning(s); see its README.md)",
        command.out.display(),
        generated.lines(),
        generated.elapsed.as_millis(),
        generated.adjustments.len(),
        generated.warnings.len(),
    );
    match previous.map(|old| surface_diff(&old, &generated.source)) {
        Some(Ok(change)) => print!("{change}"),
        Some(Err(error)) => println!("public surface: the previous src/generated.rs is not valid Rust ({error})"),
        None => println!("public surface: a new crate"),
    }
    ExitCode::SUCCESS
}
