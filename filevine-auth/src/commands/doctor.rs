//! `doctor`: one line per check of what a token needs (configuration, the
//! token cache, discovery, the token endpoint, the credentials, the clock),
//! exit 1 if any fails. Never a secret: errors from the SDK are scrubbed.

use filevine_identity_ext::Error;

use crate::config::Settings;
use crate::error::CliError;
use crate::session::{Profile, provider};

/// Clock skew beyond which the check fails: ID token times are checked with
/// a few seconds' leeway, and a minute off is a misconfigured clock.
const MAX_SKEW_SECS: u64 = 60;

/// The outcome of each check, printed as it runs.
#[derive(Default)]
struct Report {
    failed: usize,
}

impl Report {
    fn line(&mut self, ok: bool, check: &str, detail: impl std::fmt::Display) {
        // Details quote the provider (its issuer, its error descriptions).
        println!("{} {check:<15} {}", if ok { "ok  " } else { "FAIL" }, crate::output::clean(detail));
        if !ok {
            self.failed += 1;
        }
    }
}

pub async fn doctor(settings: &Settings) -> Result<(), CliError> {
    let mut report = Report::default();
    report.line(
        true,
        "configuration",
        format_args!("profile {:?}, authority {}", settings.profile, settings.region.identity_url()),
    );
    let profile = match Profile::open(settings).await {
        Ok(profile) => match profile.state().await {
            Ok(state) => {
                let signed_in = if state.is_some() { "a sign-in stored" } else { "no sign-in stored" };
                report.line(
                    true,
                    "token cache",
                    format_args!("{} ({signed_in}; key: {})", settings.tokens_dir().display(), profile.key_source),
                );
                Some(profile)
            }
            Err(error) => {
                report.line(false, "token cache", error);
                None
            }
        },
        Err(error) => {
            report.line(false, "token cache", error);
            None
        }
    };
    match filevine_identity_ext::oidc::probe(&settings.region).await {
        Ok(probe) => {
            report.line(true, "discovery", format_args!("reachable, issuer {}", probe.issuer));
            match probe.clock_skew() {
                Some(skew) => report.line(
                    skew.unsigned_abs() <= MAX_SKEW_SECS,
                    "clock",
                    format_args!(
                        "this machine is {} s {} the server (limit {MAX_SKEW_SECS} s)",
                        skew.unsigned_abs(),
                        if skew >= 0 { "ahead of" } else { "behind" }
                    ),
                ),
                None => report.line(true, "clock", "the server sent no Date header; not checked"),
            }
        }
        Err(error) => {
            report.line(false, "discovery", &error);
            report.line(false, "clock", "not checked: discovery failed");
        }
    }
    match profile {
        Some(profile) => credentials(settings, &profile, &mut report).await,
        None => report.line(false, "credentials", "not checked: the token cache could not be opened"),
    }
    if report.failed > 0 {
        return Err(CliError::Failed(format!("{} check(s) failed", report.failed)));
    }
    Ok(())
}

/// A fresh token request: whether the token endpoint answers and accepts
/// the credentials.
async fn credentials(settings: &Settings, profile: &Profile, report: &mut Report) {
    let provider = match provider(settings, profile).await {
        Ok(provider) => provider,
        Err(error) => {
            report.line(false, "credentials", error);
            return;
        }
    };
    provider.invalidate();
    match provider.token().await {
        Ok(token) => {
            report.line(true, "token endpoint", "answered");
            report.line(true, "credentials", format_args!("accepted (a token for {} s)", token.lifetime().as_secs()));
        }
        Err(error @ (Error::Network { .. } | Error::Timeout { .. })) => {
            report.line(false, "token endpoint", &error);
            report.line(false, "credentials", "not checked: the token endpoint did not answer");
        }
        Err(error) => {
            report.line(true, "token endpoint", "answered");
            report.line(false, "credentials", error);
        }
    }
}
