//! Reading configuration from the environment.
//!
//! Every `from_env` function has a twin that takes a lookup function, so
//! tests can supply variables without touching the process environment
//! (which is shared between test threads and `unsafe` to write).

/// Looks up one variable by name.
pub(crate) type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// A builder's source of configuration: the process environment or a
/// function the application gave it.
pub(crate) type EnvSource = Box<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// The process environment. A variable that is not valid Unicode reads as
/// its lossy conversion, so the error that follows names it instead of
/// treating it as unset.
pub(crate) fn process_env(name: &str) -> Option<String> {
    std::env::var_os(name).map(|value| value.to_string_lossy().into_owned())
}

/// A fake environment of `(name, value)` pairs, for tests.
#[cfg(test)]
pub(crate) fn fake<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
    move |name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned())
}
