//! Bundle signatures: Ed25519 over a canonical statement of what a `begin` announces (name,
//! version, size, the archive's SHA-256 and the downgrade flag; docs/bundle-format.md gives its
//! exact bytes), checked against the public keys the appliance's config trusts. Keys are raw
//! 32-byte values in base64, so a key fits on one line of a config file or an MQTT payload.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::durable::{self, FsError};

/// Longest key id echoed back in an error, so a hostile request cannot flood the logs.
const MAX_ECHOED_KEY_ID: usize = 64;

/// Why a key cannot be loaded or a signature does not hold.
#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    /// `key_id` names no trusted key.
    #[error("no trusted key has id '{0}'")]
    UnknownKey(String),
    /// The signature is malformed or does not verify.
    #[error("the signature does not verify against the signed statement (name, version, size, sha256, allow_downgrade)")]
    BadSignature,
    /// The name or version cannot be put in a statement.
    #[error("the statement cannot be signed: {0}")]
    InvalidStatement(&'static str),
    /// A key file or inline key is not a usable Ed25519 key.
    #[error("key '{origin}': {reason}")]
    InvalidKey {
        /// Where the key came from (a path, an inline key, a key name).
        origin: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Reading or writing a key file failed.
    #[error("{path}: {source}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// The operating system's answer.
        source: io::Error,
    },
    /// No randomness for a new key.
    #[error("the operating system's random number generator failed: {0}")]
    Randomness(String),
}

impl SignatureError {
    /// The API error code a `begin` or `commit` reply carries for this failure.
    pub fn code(&self) -> &'static str {
        match self {
            SignatureError::UnknownKey(_) => "unknown_key",
            SignatureError::BadSignature => "bad_signature",
            SignatureError::InvalidStatement(_) => "bad_request",
            SignatureError::InvalidKey { .. }
            | SignatureError::Io { .. }
            | SignatureError::Randomness(_) => "internal",
        }
    }
}

impl From<FsError> for SignatureError {
    fn from(error: FsError) -> SignatureError {
        SignatureError::Io {
            path: error.path,
            source: error.source,
        }
    }
}

/// First line of every signed statement; a new statement format gets a new line, so a signature
/// made for one format can never verify as another.
pub(crate) const STATEMENT_HEADER: &str = "packd-bundle-statement-v1";

/// What a bundle signature covers: every `begin` field the archive must live up to. The transfer
/// parameters (`transfer`, `chunk_size`) are not in it: they are the sender's choice per push and
/// are bounded by packd itself (see `transfer::MIN_CHUNK_SIZE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    name: String,
    version: String,
    size: u64,
    sha256: [u8; 32],
    allow_downgrade: bool,
}

impl Statement {
    /// A statement; `name` and `version` must be plain bundle names (no `=`, no line breaks), so
    /// the encoding stays unambiguous.
    pub fn new(
        name: &str,
        version: &str,
        size: u64,
        sha256: [u8; 32],
        allow_downgrade: bool,
    ) -> Result<Statement, SignatureError> {
        if !super::transfer::is_valid_bundle_name(name, version) {
            return Err(SignatureError::InvalidStatement(
                "name and version must be letters, digits, '-', '_', '.' (and '+' in versions)",
            ));
        }
        Ok(Statement {
            name: name.to_string(),
            version: version.to_string(),
            size,
            sha256,
            allow_downgrade,
        })
    }

    /// The exact bytes signed: six `\n`-terminated ASCII lines (docs/bundle-format.md).
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        format!(
            "{STATEMENT_HEADER}\nname={}\nversion={}\nsize={}\nsha256={}\nallow_downgrade={}\n",
            self.name,
            self.version,
            self.size,
            hex::encode(self.sha256),
            self.allow_downgrade
        )
        .into_bytes()
    }
}

/// The id a key is named by in `begin` requests: the first 16 hex digits of its SHA-256.
pub fn key_id(public: &VerifyingKey) -> String {
    let digest = Sha256::digest(public.as_bytes());
    hex::encode(&digest[..8])
}

/// The public keys bundles may be signed with, by key id.
#[derive(Debug, Clone, Default)]
pub struct TrustedKeys {
    keys: BTreeMap<String, VerifyingKey>,
}

impl TrustedKeys {
    /// Loads `bundles.trusted_keys`: each entry is a key file's path, or an inline base64 key.
    pub fn from_config(entries: &[String]) -> Result<TrustedKeys, SignatureError> {
        let mut trusted = TrustedKeys::default();
        for entry in entries {
            let entry = entry.trim();
            // A path wins when both readings work, so a file named like a key is not misread.
            let key = match decode_key_bytes(entry) {
                Some(bytes) if !Path::new(entry).exists() => {
                    verifying_key_from(&bytes, &format!("inline key '{entry}'"))?
                }
                _ => read_public_key(Path::new(entry)).map_err(|error| match error {
                    SignatureError::Io { path, source }
                        if source.kind() == io::ErrorKind::NotFound =>
                    {
                        SignatureError::InvalidKey {
                            origin: path.display().to_string(),
                            reason: "neither an existing key file nor a base64 32-byte public key"
                                .into(),
                        }
                    }
                    other => other,
                })?,
            };
            trusted.insert(key);
        }
        Ok(trusted)
    }

    /// Adds a key (for keys that do not come from the config, such as in tests and tools).
    pub(crate) fn insert(&mut self, key: VerifyingKey) {
        self.keys.insert(key_id(&key), key);
    }

    /// The key with this id, if it is trusted.
    pub(crate) fn get(&self, key_id: &str) -> Option<&VerifyingKey> {
        self.keys.get(key_id)
    }

    /// Ids of every trusted key, sorted.
    #[cfg(test)]
    pub(crate) fn key_ids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    /// Number of distinct trusted keys.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is trusted (then only `allow_unsigned` lets a bundle in).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// Checks `signature_b64` over `statement` with the trusted key named `key_id`.
pub fn verify(
    trusted: &TrustedKeys,
    statement: &Statement,
    signature_b64: &str,
    key_id: &str,
) -> Result<(), SignatureError> {
    verify_bytes(trusted, &statement.to_bytes(), signature_b64, key_id)
}

fn verify_bytes(
    trusted: &TrustedKeys,
    message: &[u8],
    signature_b64: &str,
    key_id: &str,
) -> Result<(), SignatureError> {
    let key = trusted.get(key_id).ok_or_else(|| {
        SignatureError::UnknownKey(key_id.chars().take(MAX_ECHOED_KEY_ID).collect())
    })?;
    let bytes = BASE64
        .decode(signature_b64.trim())
        .map_err(|_| SignatureError::BadSignature)?;
    let signature = Signature::from_slice(&bytes).map_err(|_| SignatureError::BadSignature)?;
    // verify_strict also refuses small-order keys and non-canonical R, which plain verify lets
    // through; a signature must name exactly one signer.
    key.verify_strict(message, &signature)
        .map_err(|_| SignatureError::BadSignature)
}

/// A fresh key pair from the operating system's randomness.
pub fn generate_keypair() -> Result<(SigningKey, VerifyingKey), SignatureError> {
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed)
        .map_err(|error| SignatureError::Randomness(error.to_string()))?;
    let secret = SigningKey::from_bytes(&seed);
    let public = secret.verifying_key();
    Ok((secret, public))
}

/// Signs a statement; the base64 result is what `begin` carries as `signature`.
pub fn sign(secret: &SigningKey, statement: &Statement) -> String {
    sign_bytes(secret, &statement.to_bytes())
}

fn sign_bytes(secret: &SigningKey, message: &[u8]) -> String {
    BASE64.encode(secret.sign(message).to_bytes())
}

/// Reads a secret key file (base64 of the 32-byte seed).
pub fn read_secret_key(path: &Path) -> Result<SigningKey, SignatureError> {
    let text = read_key_file(path)?;
    let bytes = decode_key_bytes(&text).ok_or_else(|| SignatureError::InvalidKey {
        origin: path.display().to_string(),
        reason: "expected one line of base64 encoding a 32-byte seed".into(),
    })?;
    Ok(SigningKey::from_bytes(&bytes))
}

/// Reads a public key file (base64 of the 32 raw public-key bytes).
pub fn read_public_key(path: &Path) -> Result<VerifyingKey, SignatureError> {
    let text = read_key_file(path)?;
    let origin = path.display().to_string();
    let bytes = decode_key_bytes(&text).ok_or_else(|| SignatureError::InvalidKey {
        origin: origin.clone(),
        reason: "expected one line of base64 encoding a 32-byte public key".into(),
    })?;
    verifying_key_from(&bytes, &origin)
}

/// Where [`write_keypair`] put a new key pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPairFiles {
    /// `NAME.key`, the secret seed (mode 0600).
    pub secret_path: PathBuf,
    /// `NAME.pub`, the public key for appliances to trust.
    pub public_path: PathBuf,
    /// The public key's id.
    pub key_id: String,
}

/// Generates a key pair and writes `NAME.key` (mode 0600) and `NAME.pub` under `dir`.
pub fn write_keypair(dir: &Path, name: &str) -> Result<KeyPairFiles, SignatureError> {
    if name.is_empty()
        || name.starts_with('.')
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(SignatureError::InvalidKey {
            origin: name.to_string(),
            reason: "a key name is ASCII letters, digits, '-', '_' or '.', not starting with '.'"
                .into(),
        });
    }
    let (secret, public) = generate_keypair()?;
    let id = key_id(&public);
    // Both files are created with create_new: overwriting a signing key would strand every
    // appliance that trusts it.
    let secret_path = dir.join(format!("{name}.key"));
    let public_path = dir.join(format!("{name}.pub"));
    write_new_file(
        &secret_path,
        0o600,
        &format!("{}\n", BASE64.encode(secret.to_bytes())),
    )?;
    let public_text = format!(
        "# packd bundle signing key, key id {id}\n{}\n",
        BASE64.encode(public.as_bytes())
    );
    if let Err(error) = write_new_file(&public_path, 0o644, &public_text) {
        // Half a pair is worse than none: the next attempt would trip over the orphan.
        let _ = fs::remove_file(&secret_path);
        return Err(error);
    }
    Ok(KeyPairFiles {
        secret_path,
        public_path,
        key_id: id,
    })
}

fn write_new_file(path: &Path, mode: u32, text: &str) -> Result<(), SignatureError> {
    Ok(durable::create_new_file(path, mode, text.as_bytes())?)
}

fn read_key_file(path: &Path) -> Result<String, SignatureError> {
    fs::read_to_string(path).map_err(|source| SignatureError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// The 32 key bytes of a key file's text or an inline key: `#` lines and whitespace ignored.
fn decode_key_bytes(text: &str) -> Option<[u8; 32]> {
    let encoded: String = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.starts_with('#'))
        .flat_map(|line| line.chars().filter(|c| !c.is_whitespace()))
        .collect();
    if encoded.is_empty() {
        return None;
    }
    BASE64.decode(encoded).ok()?.try_into().ok()
}

fn verifying_key_from(bytes: &[u8; 32], origin: &str) -> Result<VerifyingKey, SignatureError> {
    let key = VerifyingKey::from_bytes(bytes).map_err(|_| SignatureError::InvalidKey {
        origin: origin.to_string(),
        reason: "not a valid Ed25519 public key".into(),
    })?;
    if key.is_weak() {
        return Err(SignatureError::InvalidKey {
            origin: origin.to_string(),
            reason: "a small-order Ed25519 key, which anyone can sign for".into(),
        });
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 8032, section 7.1, test 1.
    const RFC_SECRET: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
    const RFC_PUBLIC: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
    const RFC_EMPTY_MESSAGE_SIGNATURE: &str =
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065\
        224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";
    // The RFC key's signature of SHA-256("packd"), made independently with Python's
    // `cryptography` package (Ed25519 signatures are deterministic).
    const RFC_SIGNATURE_OF_PACKD_DIGEST: &str =
        "ssAsyzJVDDr1B/rLVljsQKqcmYeetl6FhMHqeiRtTrjtzGKuwu4NFNrtgrDdZLJ5S4tlIN5c4N1r9XmGwMLyCA==";

    fn rfc_secret() -> SigningKey {
        SigningKey::from_bytes(&hex::decode(RFC_SECRET).unwrap().try_into().unwrap())
    }

    fn digest_of(text: &str) -> [u8; 32] {
        Sha256::digest(text.as_bytes()).into()
    }

    /// A statement about an "archive" made of `text`.
    fn statement_of(text: &str) -> Statement {
        Statement::new(
            "packd-default",
            "1.0.0",
            text.len() as u64,
            digest_of(text),
            false,
        )
        .unwrap()
    }

    fn trusting(keys: &[&VerifyingKey]) -> TrustedKeys {
        let mut trusted = TrustedKeys::default();
        for key in keys {
            trusted.insert(**key);
        }
        trusted
    }

    #[test]
    fn rfc8032_vector_one() {
        let secret = rfc_secret();
        let public = secret.verifying_key();
        assert_eq!(hex::encode(public.as_bytes()), RFC_PUBLIC);
        let rfc_signature: [u8; 64] = hex::decode(RFC_EMPTY_MESSAGE_SIGNATURE)
            .unwrap()
            .try_into()
            .unwrap();
        public
            .verify_strict(b"", &Signature::from_bytes(&rfc_signature))
            .unwrap();
        assert_eq!(key_id(&public), "21fe31dfa154a261");

        let digest = digest_of("packd");
        let signature = sign_bytes(&secret, &digest);
        assert_eq!(signature, RFC_SIGNATURE_OF_PACKD_DIGEST);
        let inline = BASE64.encode(public.as_bytes());
        let trusted = TrustedKeys::from_config(&[inline]).unwrap();
        verify_bytes(&trusted, &digest, &signature, "21fe31dfa154a261").unwrap();
    }

    #[test]
    fn sign_verify_round_trip_and_tampering() {
        let (secret, public) = generate_keypair().unwrap();
        let (other_secret, _) = generate_keypair().unwrap();
        assert_ne!(secret.to_bytes(), other_secret.to_bytes());
        let trusted = trusting(&[&public]);
        let id = key_id(&public);
        let statement = statement_of("archive bytes");
        let signature = sign(&secret, &statement);
        verify(&trusted, &statement, &signature, &id).unwrap();
        // Surrounding whitespace (a trailing newline from a file) is tolerated.
        verify(&trusted, &statement, &format!(" {signature}\n"), &id).unwrap();

        let mut tampered = statement.clone();
        tampered.sha256[31] ^= 1;
        let error = verify(&trusted, &tampered, &signature, &id).unwrap_err();
        assert!(matches!(error, SignatureError::BadSignature));
        assert_eq!(error.code(), "bad_signature");

        let mut raw = BASE64.decode(&signature).unwrap();
        raw[0] ^= 0x80;
        assert!(matches!(
            verify(&trusted, &statement, &BASE64.encode(&raw), &id),
            Err(SignatureError::BadSignature)
        ));
    }

    #[test]
    fn keys_that_are_not_the_signer() {
        let (signer_secret, signer) = generate_keypair().unwrap();
        let (_, bystander) = generate_keypair().unwrap();
        let statement = statement_of("bundle");
        let signature = sign(&signer_secret, &statement);

        let only_bystander = trusting(&[&bystander]);
        let error = verify(&only_bystander, &statement, &signature, &key_id(&signer)).unwrap_err();
        match &error {
            SignatureError::UnknownKey(id) => assert_eq!(id, &key_id(&signer)),
            other => panic!("expected UnknownKey, got {other:?}"),
        }
        assert_eq!(error.code(), "unknown_key");

        let both = trusting(&[&signer, &bystander]);
        assert_eq!(both.len(), 2);
        assert!(matches!(
            verify(&both, &statement, &signature, &key_id(&bystander)),
            Err(SignatureError::BadSignature)
        ));
        verify(&both, &statement, &signature, &key_id(&signer)).unwrap();
    }

    #[test]
    fn malformed_signatures_and_key_ids() {
        let secret = rfc_secret();
        let trusted = trusting(&[&secret.verifying_key()]);
        let id = key_id(&secret.verifying_key());
        let statement = statement_of("x");
        let short = BASE64.encode([1u8; 63]);
        let long = BASE64.encode([1u8; 65]);
        for bad in ["", "not base64!", "====", short.as_str(), long.as_str()] {
            assert!(
                matches!(
                    verify(&trusted, &statement, bad, &id),
                    Err(SignatureError::BadSignature)
                ),
                "{bad:?}"
            );
        }
        let flood = "f".repeat(10_000);
        match verify(&trusted, &statement, "", &flood) {
            Err(SignatureError::UnknownKey(echoed)) => assert_eq!(echoed.len(), MAX_ECHOED_KEY_ID),
            other => panic!("expected UnknownKey, got {other:?}"),
        }
        assert!(matches!(
            verify(&TrustedKeys::default(), &statement, "", ""),
            Err(SignatureError::UnknownKey(_))
        ));
    }

    #[test]
    fn trusted_keys_from_files_and_inline() {
        let dir = tempfile::tempdir().unwrap();
        let public = rfc_secret().verifying_key();
        let encoded = BASE64.encode(public.as_bytes());
        let file = dir.path().join("fleet.pub");
        fs::write(
            &file,
            format!("# fleet signing key\n\n   {encoded}  \n# trailing comment\n"),
        )
        .unwrap();
        let (_, other) = generate_keypair().unwrap();
        let inline = format!("  {}  ", BASE64.encode(other.as_bytes()));
        let trusted = TrustedKeys::from_config(&[
            file.display().to_string(),
            inline,
            file.display().to_string(),
        ])
        .unwrap();
        assert_eq!(trusted.len(), 2, "the same key twice counts once");
        assert!(trusted.get("21fe31dfa154a261").is_some());
        assert!(trusted.get(&key_id(&other)).is_some());
        assert!(TrustedKeys::from_config(&[]).unwrap().is_empty());
    }

    #[test]
    fn an_existing_path_wins_over_an_inline_reading() {
        let (_, named_key) = generate_keypair().unwrap();
        let (_, file_key) = generate_keypair().unwrap();
        // "/tmp/" and the rest are all base64 characters: the absolute path itself decodes to
        // 32 bytes, so only the existence check tells the two readings apart.
        let encoded = BASE64.encode(named_key.as_bytes());
        let path_text = format!("/tmp/{}=", encoded[5..43].replace('/', "A"));
        assert_eq!(decode_key_bytes(&path_text).map(|b| b.len()), Some(32));
        let inline_reading = decode_key_bytes(&path_text).unwrap();
        fs::write(&path_text, BASE64.encode(file_key.as_bytes())).unwrap();
        let loaded = TrustedKeys::from_config(std::slice::from_ref(&path_text));
        let _ = fs::remove_file(&path_text);
        let loaded = loaded.unwrap();
        assert_eq!(loaded.key_ids().collect::<Vec<_>>(), [key_id(&file_key)]);
        assert_ne!(inline_reading, *file_key.as_bytes());
    }

    #[test]
    fn bad_config_entries_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.pub").display().to_string();
        let error = TrustedKeys::from_config(std::slice::from_ref(&missing)).unwrap_err();
        assert!(error.to_string().contains(&missing), "{error}");
        assert!(matches!(error, SignatureError::InvalidKey { .. }));

        let short = BASE64.encode([5u8; 31]);
        let error = TrustedKeys::from_config(std::slice::from_ref(&short)).unwrap_err();
        assert!(error.to_string().contains(&short), "{error}");

        let garbage = dir.path().join("garbage.pub");
        fs::write(&garbage, "# only a comment\nhello world\n").unwrap();
        let error = TrustedKeys::from_config(&[garbage.display().to_string()]).unwrap_err();
        assert!(error.to_string().contains("garbage.pub"), "{error}");

        // The identity point decodes but is small-order: anyone could sign for it.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let error = TrustedKeys::from_config(&[BASE64.encode(identity)]).unwrap_err();
        assert!(error.to_string().contains("small-order"), "{error}");
    }

    #[test]
    fn keypair_files() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let files = write_keypair(dir.path(), "fleet-2026").unwrap();
        assert_eq!(files.secret_path, dir.path().join("fleet-2026.key"));
        let mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&files.secret_path), 0o600);
        assert_eq!(
            mode(&files.public_path) & 0o022,
            0,
            "public key file is writable by others"
        );

        let secret = read_secret_key(&files.secret_path).unwrap();
        let public = read_public_key(&files.public_path).unwrap();
        assert_eq!(secret.verifying_key(), public);
        assert_eq!(key_id(&public), files.key_id);
        let trusted = TrustedKeys::from_config(&[files.public_path.display().to_string()]).unwrap();
        let statement = statement_of("bundle");
        verify(
            &trusted,
            &statement,
            &sign(&secret, &statement),
            &files.key_id,
        )
        .unwrap();

        let before = fs::read(&files.secret_path).unwrap();
        assert!(matches!(
            write_keypair(dir.path(), "fleet-2026"),
            Err(SignatureError::Io { .. })
        ));
        assert_eq!(
            fs::read(&files.secret_path).unwrap(),
            before,
            "a key was overwritten"
        );
        for bad in ["", "../x", "a/b", ".hidden"] {
            assert!(
                matches!(
                    write_keypair(dir.path(), bad),
                    Err(SignatureError::InvalidKey { .. })
                ),
                "{bad:?}"
            );
        }
        assert!(matches!(
            read_secret_key(&dir.path().join("absent.key")),
            Err(SignatureError::Io { .. })
        ));
    }

    #[test]
    fn the_statement_has_the_documented_bytes() {
        let statement = Statement::new(
            "packd-default",
            "1.2.0+orin",
            1_338_787,
            digest_of("packd"),
            true,
        )
        .unwrap();
        let expected = format!(
            "packd-bundle-statement-v1\nname=packd-default\nversion=1.2.0+orin\nsize=1338787\n\
             sha256={}\nallow_downgrade=true\n",
            hex::encode(digest_of("packd"))
        );
        assert_eq!(String::from_utf8(statement.to_bytes()).unwrap(), expected);
        for (name, version) in [("a\nsize=1", "1.0.0"), ("a", "1=2"), ("", "1"), ("a", "")] {
            assert!(
                matches!(
                    Statement::new(name, version, 1, [0; 32], false),
                    Err(SignatureError::InvalidStatement(_))
                ),
                "{name:?} {version:?}"
            );
        }
    }

    /// Each field of the statement is covered: changing any one of them (as a replayed `begin`
    /// with another size would) breaks the signature, and so does a signature over the bare
    /// digest, the format before statements.
    #[test]
    fn every_statement_field_is_signed() {
        let (secret, public) = generate_keypair().unwrap();
        let trusted = trusting(&[&public]);
        let id = key_id(&public);
        let digest = digest_of("archive");
        let signed = Statement::new("b", "1.0.0", 7, digest, false).unwrap();
        let signature = sign(&secret, &signed);
        verify(&trusted, &signed, &signature, &id).unwrap();
        let changed = [
            Statement::new("c", "1.0.0", 7, digest, false),
            Statement::new("b", "1.0.1", 7, digest, false),
            Statement::new("b", "1.0.0", 1 << 30, digest, false),
            Statement::new("b", "1.0.0", 7, [0; 32], false),
            Statement::new("b", "1.0.0", 7, digest, true),
        ];
        for statement in changed {
            let statement = statement.unwrap();
            assert!(
                matches!(
                    verify(&trusted, &statement, &signature, &id),
                    Err(SignatureError::BadSignature)
                ),
                "{statement:?}"
            );
        }
        let legacy = sign_bytes(&secret, &digest);
        assert!(matches!(
            verify(&trusted, &signed, &legacy, &id),
            Err(SignatureError::BadSignature)
        ));
    }
}
