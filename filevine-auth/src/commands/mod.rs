//! One function per command.

mod doctor;
mod login;
mod logout;
mod status;
mod token;
mod whoami;

pub use doctor::doctor;
pub use login::{login, login_with_device, login_with_pat};
pub use logout::logout;
pub use status::status;
pub use token::token;
pub use whoami::whoami;

/// `completions <shell>`: the script on stdout.
pub fn completions(shell: clap_complete::Shell) {
    let mut command = <crate::cli::Cli as clap::CommandFactory>::command();
    clap_complete::generate(shell, &mut command, "filevine-auth", &mut std::io::stdout());
}
