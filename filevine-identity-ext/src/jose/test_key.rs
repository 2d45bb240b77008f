//! An RSA key pair for the ID token and client key unit tests, the
//! `id_token` and `logout_token` fuzz targets and the test server (feature
//! `test-util`), which signs its ID tokens with it. Here, below both
//! `oidc/` and `test_util/`, so every user reaches it from above: they sign tokens with chosen claims, so the checks after the
//! signature are reached. Never compiled into a normal build.

/// The signing and verification keys, decoded once.
pub(crate) fn signing_keys() -> Option<&'static (jsonwebtoken::EncodingKey, jsonwebtoken::DecodingKey)> {
    use base64::Engine as _;
    static KEYS: std::sync::OnceLock<Option<(jsonwebtoken::EncodingKey, jsonwebtoken::DecodingKey)>> =
        std::sync::OnceLock::new();
    KEYS.get_or_init(|| {
        crate::crypto::install_default_provider();
        let der = base64::engine::general_purpose::STANDARD.decode(KEY_PKCS1_DER.concat()).ok()?;
        let decoding = jsonwebtoken::DecodingKey::from_rsa_components(KEY_N, "AQAB").ok()?;
        Some((jsonwebtoken::EncodingKey::from_rsa_der(&der), decoding))
    })
    .as_ref()
}

/// The private key, PKCS#1 DER.
#[cfg(test)]
pub(crate) fn pkcs1_der() -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(KEY_PKCS1_DER.concat()).unwrap_or_default()
}

/// The modulus of the RSA key (base64url), for verification.
pub(crate) const KEY_N: &str = "pGnL7OF5hO-UuGFJCWQLDgVP6p6YDOHtN3aYXyYO5eejJGAN6l56wa5D_XU7H_7_zIFTeT1qa8TaK8YEgksJu91jTpzIyrIX8bwvATEFRKcXeQvwYZIpCLPbPKOIjwTFYnoQ-cIvia8l2IKQQEt_KcHVYqwMbb2tst3FCeYfwXFMH6zc8RiZoKj-L_st5xtTk3bUuBkbhi_7Mow0MUnKb7XmanWiuKiK7EkFLDujctkgeN0QKTpiCHjriO0N7P_KRw2bXTJFIjzR9TQX34uDw1KDS_RuIxcMqDFvGqHfpZZC7SkmYcFRIPnwpBx4lrubMe0u5fScQHXVcwB8lhlJNQ";

/// The RSA private key (PKCS#1 DER, base64), generated for the fuzzer and
/// the unit tests alone: it signs nothing outside them.
const KEY_PKCS1_DER: &[&str] = &[
    "MIIEowIBAAKCAQEApGnL7OF5hO+UuGFJCWQLDgVP6p6YDOHtN3aYXyYO5eejJGAN6l56wa5D/XU7H/7/zIFTeT1qa8TaK8YEgksJ",
    "u91jTpzIyrIX8bwvATEFRKcXeQvwYZIpCLPbPKOIjwTFYnoQ+cIvia8l2IKQQEt/KcHVYqwMbb2tst3FCeYfwXFMH6zc8RiZoKj+",
    "L/st5xtTk3bUuBkbhi/7Mow0MUnKb7XmanWiuKiK7EkFLDujctkgeN0QKTpiCHjriO0N7P/KRw2bXTJFIjzR9TQX34uDw1KDS/Ru",
    "IxcMqDFvGqHfpZZC7SkmYcFRIPnwpBx4lrubMe0u5fScQHXVcwB8lhlJNQIDAQABAoIBAAod5cnKXgXgutAAUdQyxGi1Hvka5Smg",
    "b/kCYoHdqlEEnd9LzHoSx470wC5FG8GY7qM7hKgTMAyNl7crKh/c/4OrLcR/6phpDlwg7kDZLq/OGv2nJGrR6ZXQK2S3KLH+4yka",
    "Gxf4lkrsl3GT0c3YV2zPBpMEbzIELT9dB2uCg4sNlRMDPuExr4K8m5/3eExPwFH+YdAJ7KPu/dGJcE+vWFaKQDNe74A5nMBkS5YY",
    "5YM9ZchA6vQu5zCKE6itu2O7xB4cVhyp+FC4c3OXleC+zMz5jXV8O/YJOOAGGrJIP4VkImXa5r7E3idTtiM4OraYlj9uT64elP2I",
    "AkOohhiiogECgYEA1WTSghv+mDfN4eBd5+tepETPnV4/gnlqqnFTr1oklO25BJW+ZmrXZnz7aUzh8WKxRNQZjnRxZWEukGO9ydhC",
    "MBzm2ZXZI7nCkVQkIkznk1SXsXH4Kojm6o2LqslQ7tSidcETBYtRCewN/k7fcuc1he0UYPlj2PJ++/Mg+IrkO8ECgYEAxT1vdWyo",
    "4QHWxVjbAMKO5UhjLR/4s/mfaVohrNjcKVOb4KuB8LrD6yG/MzAGpOSB2i88bQakoXHX3XI0jT7nVxf3gzT/La4BNA6bpwEDUTwt",
    "DxvbPxlfTkAfxmi+kI8JvLXCS2QnbWkHBhSBlijcPMuwRmJ/YhX+pk/qaGtQenUCgYB0dCohUQ+2mDWl/+CfcSZb9SVsFwQHuyUH",
    "0QK/Xi06jST8KJAYqlPUnX5Cb++Z4KcnDazIvikoD0nvCE+JeJheU1d0BL/ULErPLqDtixSRpYeHEdBBviZueEJxOJ4PSEFEi9JK",
    "o0XdaVIVp4tv1Fe0N7Z4WYEw4t2Dt6IVoQ5+wQKBgQCuvwpTv4wzpVxxhZKqLrVJQAPWA+BlG4B3Z0o0iAEugAu3VlwOOnm/hSuP",
    "nzoTtvuwoW7orR0IiAMXB8q1ZQiy6eH5FegKwYIBa/vNTyFwRF8rZqOtWL5OZpOARmanToLy9RmJj9c6oPV/FoXk0pilKFUpVrTC",
    "4ve0w1LLZmBrzQKBgDJdImV4ro0jLc3NpiX8CbuYylwprUFEVFbl96pxmmPrzLgV+N6dPwDhSQRXOSTy/OANI88o2EAqO3gINoqm",
    "r5edS47buAUT+cUoGnlgeIsoINSx1d74vPF2SWTn+2wXRuJ2ozjL8XGLaiCrUQKA3rcWv7g0FmW7Hdy5G8/lHavN",
];
