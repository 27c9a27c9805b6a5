//! TLS material: a local CA generated on first start, and a server certificate it signs.
//!
//! The official SDKs hard-code `https`, so even a laptop install needs TLS. The CA lives in
//! the data folder (`tls/ca.pem`); clients trust that one file (the Python SDK's
//! `ca_certs=`). An operator can give their own certificate and key instead.

use std::fs;
use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

/// Files of the local CA and the server certificate it signed.
pub struct LocalTls {
    pub ca_cert: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
}

/// Names the generated server certificate is valid for.
const SERVER_NAMES: &[&str] = &["localhost", "127.0.0.1", "::1"];

/// Creates the local CA and a server certificate in `dir` unless they already exist.
pub fn ensure_local_ca(dir: &Path) -> Result<LocalTls, Box<dyn std::error::Error + Send + Sync>> {
    let out = LocalTls {
        ca_cert: dir.join("ca.pem"),
        server_cert: dir.join("server.pem"),
        server_key: dir.join("server.key"),
    };
    if out.ca_cert.exists() && out.server_cert.exists() && out.server_key.exists() {
        return Ok(out);
    }
    fs::create_dir_all(dir)?;
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Cubby local CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let server_key = KeyPair::generate()?;
    let mut params = CertificateParams::new(
        SERVER_NAMES
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>(),
    )?;
    params
        .distinguished_name
        .push(DnType::CommonName, "Cubby server");
    let server_cert = params.signed_by(&server_key, &issuer)?;

    write_private(&out.server_key, &server_key.serialize_pem())?;
    fs::write(&out.server_cert, server_cert.pem())?;
    fs::write(&out.ca_cert, ca_cert.pem())?;
    Ok(out)
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(contents.as_bytes())
}
