//! The crypto backend the features chose, made the process default where
//! its libraries need one: rustls (TLS) under `ring`, jsonwebtoken (ID
//! token signatures) when both features are on and it cannot choose.

/// Called before the SDK builds an HTTP client or checks a signature.
/// Cheap after the first call; never replaces a provider the application
/// installed itself.
pub(crate) fn ensure_providers() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        #[cfg(all(feature = "ring", not(feature = "aws-lc")))]
        {
            // Err: the application installed one already; it stays.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        #[cfg(all(feature = "ring", feature = "aws-lc"))]
        {
            let _ =
                jsonwebtoken::crypto::CryptoProvider::install_default(&jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER);
        }
    });
}
