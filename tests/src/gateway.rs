//! A whole Twofold deployment inside the test process, for end-to-end tests: an s3s-fs
//! backend ([`DevBackend`]) on a temporary folder with random credentials, two SoftHSM2
//! custodians (one token per layer), and the gateway ([`twofold::serve::start`]) on
//! `127.0.0.1:0` in front of them. Clients are the real AWS SDK for Rust, or raw sockets
//! ([`crate::rawhttp`]) for what no SDK sends.
//!
//! ```no_run
//! # async fn f() {
//! let gw = twofold_tests::gateway::TestGateway::start();
//! let s3 = gw.client();
//! s3.create_bucket().bucket("b").send().await.unwrap();
//! twofold_tests::gateway::put(&s3, "b", "k", b"hello".to_vec()).await;
//! assert_eq!(twofold_tests::gateway::get(&s3, "b", "k").await, b"hello");
//! gw.assert_no_plaintext_in_backend(&[b"hello, sixteen bytes at least"]);
//! # }
//! ```

use crate::backend::{self, BackendKind, Capability, MotoServer, every_object, listed_parts};
use crate::{Custody, kek_label, open_custodian, random_bytes};
use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::interceptors::{
    BeforeTransmitInterceptorContextMut, BeforeTransmitInterceptorContextRef,
};
use aws_sdk_s3::config::{
    BehaviorVersion, ConfigBag, Credentials, Intercept, Region, RuntimeComponents,
};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use twofold::config::{
    BackendTransport, ClientCredential, ListenerTls, Secret, ServeSettings, UnencryptedObjects,
};
use twofold::devbackend::DevBackend;
use twofold::envelope::aead::Layer;
use twofold::envelope::layout::SegmentSize;
use twofold::keys::named::{NamedKey, NamedKeys};
use twofold::keys::{CustodianSpec, KeyringSettings};
use twofold::s3::Grants;
use twofold::serve::ServeHandle;
use twofold::sigv4::{self, ChunkSigner, PayloadMode, SigningInput};

/// The region clients sign for.
pub const REGION: &str = "us-east-1";
/// The bucket the limited credential may use (and the only one).
pub const LIMITED_BUCKET: &str = "limited-allowed";
/// Worker cores of each test gateway.
pub const CORES: usize = 2;
/// Length of the windows [`TestGateway::assert_no_plaintext_in_backend`] looks for.
pub const PLAINTEXT_WINDOW_BYTES: usize = 16;
/// Shortest plaintext looked for whole when it is shorter than a window.
pub const PLAINTEXT_SHORT_BYTES_MIN: usize = 8;
/// How long any one SDK operation may take before the test fails instead of hanging.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(120);

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// An access key id and its secret.
#[derive(Debug, Clone)]
pub struct Credential {
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret: String,
}

impl Credential {
    /// A fresh random credential whose id starts with `prefix`.
    pub fn random(prefix: &str) -> Self {
        Self {
            access_key_id: format!("{prefix}{}", hex::encode_upper(random_bytes(8))),
            secret: hex::encode(random_bytes(20)),
        }
    }

    /// The gateway's configuration of this credential: the buckets it may use (`None`: all)
    /// and its grants.
    pub fn configured(&self, buckets: Option<&[&str]>, grants: Grants) -> ClientCredential {
        ClientCredential {
            access_key_id: self.access_key_id.clone(),
            secret: Secret(zeroize::Zeroizing::new(self.secret.clone())),
            buckets: buckets.map(|list| list.iter().map(|b| (*b).to_owned()).collect()),
            grants,
            key_ids: None,
        }
    }
}

/// How to start a [`TestGateway`].
#[derive(Debug, Clone)]
pub struct Options {
    /// Policy for backend objects Twofold did not write.
    pub unencrypted_objects: UnencryptedObjects,
    /// Virtual-hosted-style base domains.
    pub base_domains: Vec<String>,
    /// Segment size of new objects.
    pub segment_size: SegmentSize,
    /// Whether the gateway gets an admin listener (`/metrics`, `/healthz`, `/readyz`) on a
    /// free loopback port.
    pub admin_listener: bool,
    /// Worker cores.
    pub cores: usize,
    /// Deadlines and connection caps.
    pub limits: twofold::limits::Limits,
    /// Credentials configured besides [`TestGateway::admin`] and [`TestGateway::limited`]
    /// (see [`Credential::configured`]).
    pub extra_credentials: Vec<ClientCredential>,
    /// Named keys, by id: each gets a KEK of its own on both tokens ([`named_key_label`]).
    pub named_keys: Vec<String>,
    /// Buckets' default keys: (bucket, a named key's id).
    pub bucket_defaults: Vec<(String, String)>,
    /// Seconds between each core's checks for newer KEK versions.
    pub kek_version_check_secs: u64,
}

/// The KEK label of named key `id` on the token of `layer`: its characters that are no
/// letters or digits become `-`.
pub fn named_key_label(id: &str, layer: Layer) -> String {
    let safe: String = id
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("{safe}-{layer}")
}

impl Default for Options {
    fn default() -> Self {
        Self {
            unencrypted_objects: UnencryptedObjects::Reject,
            base_domains: vec!["localhost".to_owned()],
            segment_size: SegmentSize::DEFAULT,
            admin_listener: false,
            cores: CORES,
            limits: twofold::limits::Limits::default(),
            extra_credentials: Vec::new(),
            named_keys: Vec::new(),
            bucket_defaults: Vec::new(),
            kek_version_check_secs: 60,
        }
    }
}

/// One running gateway process-equivalent: its own cores, custodian sessions and caches.
#[derive(Debug)]
pub struct Gateway {
    handle: ServeHandle,
    admin: Credential,
}

impl Gateway {
    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.handle.addr()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr())
    }

    /// Where its admin listener is, if it has one.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.handle.admin_addr()
    }

    /// An SDK client with the all-buckets credential.
    pub fn client(&self) -> Client {
        client_for(&self.endpoint(), &self.admin)
    }

    /// The running gateway's handle (for [`ServeHandle::reload_tls`]).
    pub fn handle(&self) -> &ServeHandle {
        &self.handle
    }

    /// The admin credential it was started with.
    pub fn admin(&self) -> &Credential {
        &self.admin
    }

    /// Stops it and waits for its threads.
    pub fn stop(self) {
        self.handle.stop();
    }
}

/// The backend of one [`TestGateway`] (see [`crate::backend`]).
#[derive(Debug)]
enum Store {
    /// s3s-fs on `root`; `None` while stopped.
    S3sFs {
        server: Option<DevBackend>,
        root: PathBuf,
    },
    /// A tenant of its own on the Ceph RGW, with nothing to stop.
    Ceph,
    /// A `moto_server` of its own, held for its `Drop`, which stops it.
    Moto { _server: MotoServer },
}

/// A backend, two custodians and a gateway, all in a temporary folder that goes when this
/// is dropped (gateway first, then backend, then the folder). The backend is the one
/// `TWOFOLD_TEST_BACKEND` names ([`crate::backend`]).
#[derive(Debug)]
pub struct TestGateway {
    gateway: Option<Gateway>,
    store: Store,
    backend_addr: SocketAddr,
    backend_cred: Credential,
    admin: Credential,
    limited: Credential,
    custody: Custody,
    settings: ServeSettings,
    keyring: KeyringSettings,
    _dir: tempfile::TempDir,
}

/// Adds the KEKs of named keys `ids` to both tokens of `custody` (created there), and
/// the keys the gateway is configured with: `None` when there are none.
fn with_named_keys(custody: &mut Custody, ids: &[String]) -> Option<NamedKeys> {
    if ids.is_empty() {
        return None;
    }
    let mut keys = NamedKeys::only_default(&kek_label(Layer::Inner), &kek_label(Layer::Outer));
    for layer in [Layer::Inner, Layer::Outer] {
        let spec = match layer {
            Layer::Inner => &mut custody.inner,
            Layer::Outer => &mut custody.outer,
        };
        if let CustodianSpec::Pkcs11 {
            named_key_labels, ..
        } = spec
        {
            named_key_labels.extend(ids.iter().map(|id| named_key_label(id, layer)));
        }
        crate::init_custodian(layer, spec);
    }
    keys.keys = ids
        .iter()
        .map(|id| NamedKey {
            id: id.clone(),
            aliases: Vec::new(),
            inner_kek: named_key_label(id, Layer::Inner),
            outer_kek: named_key_label(id, Layer::Outer),
            destroyed: false,
        })
        .collect();
    Some(keys)
}

impl TestGateway {
    /// Starts everything with [`Options::default`].
    pub fn start() -> Self {
        Self::start_with(Options::default())
    }

    /// Starts everything with `opts`.
    pub fn start_with(opts: Options) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("twofold-gw-")
            .tempdir()
            .unwrap_or_else(|e| panic!("creating the test folder: {e}"));
        let (store, backend_addr, backend_cred) = start_backend(dir.path());
        let mut custody = Custody::new("gw");
        let named_keys = with_named_keys(&mut custody, &opts.named_keys).map(|mut k| {
            k.bucket_defaults = opts.bucket_defaults.clone();
            k
        });
        let admin = Credential::random("ADMIN");
        let limited = Credential::random("LIMITED");
        let settings = ServeSettings {
            listen: loopback0(),
            cores: opts.cores,
            region: REGION.to_owned(),
            base_domains: opts.base_domains,
            unencrypted_objects: opts.unencrypted_objects,
            // The tests' gateway and backend talk plain HTTP on loopback, explicitly;
            // tests/tests/it/gateway_tls.rs starts TLS ones with `start_another_with`.
            listener_tls: ListenerTls::PlainHttp,
            backend_transport: BackendTransport::PlainHttp,
            backend_addr: backend_addr.to_string(),
            backend_host: backend_addr.to_string(),
            backend_region: REGION.to_owned(),
            backend_access_key_id: backend_cred.access_key_id.clone(),
            backend_secret: Secret(zeroize::Zeroizing::new(backend_cred.secret.clone())),
            pool_connections_per_core: 8,
            shutdown_grace: Duration::from_secs(30),
            drain_notice: Duration::ZERO,
            admin_listen: opts.admin_listener.then(loopback0),
            admin_tls: twofold::config::ListenerTls::PlainHttp,
            console: None,
            limits: opts.limits,
            credentials: [
                // Every test may administer its buckets; tests/tests/it/gateway_grants.rs
                // checks the grants with credentials of its own.
                admin.configured(None, Grants::ADMIN),
                limited.configured(Some(&[LIMITED_BUCKET]), Grants::default()),
            ]
            .into_iter()
            .chain(opts.extra_credentials)
            .collect(),
            named_keys,
        };
        let mut keyring = crate::settings(opts.segment_size);
        keyring.kek_version_check_secs = opts.kek_version_check_secs;
        let mut gw = TestGateway {
            gateway: None,
            store,
            backend_addr,
            backend_cred,
            admin,
            limited,
            custody,
            settings,
            keyring,
            _dir: dir,
        };
        gw.gateway = Some(gw.start_another());
        gw
    }

    /// Starts one more gateway on the same backend, tokens, KEKs and credentials: what a
    /// second process (or host) of the same deployment is. It opens its own custodian
    /// sessions and has its own caches.
    pub fn start_another(&self) -> Gateway {
        self.try_start_another_with(|_| {})
            .unwrap_or_else(|e| panic!("starting a gateway: {e}"))
    }

    /// Like [`TestGateway::start_another`], with the settings changed by `change` first
    /// (TLS on either side, say); the error if it does not start.
    pub fn try_start_another_with(
        &self,
        change: impl FnOnce(&mut ServeSettings),
    ) -> std::io::Result<Gateway> {
        let mut settings = self.settings.clone();
        change(&mut settings);
        // A named key marked destroyed has no KEKs left for the custodians to find.
        let destroyed: Vec<String> = settings
            .named_keys
            .iter()
            .flat_map(|k| &k.keys)
            .filter(|k| k.destroyed)
            .flat_map(|k| [k.inner_kek.clone(), k.outer_kek.clone()])
            .collect();
        let spec = |layer| {
            let mut spec = self.custody.spec(layer).clone();
            if let CustodianSpec::Pkcs11 {
                named_key_labels, ..
            } = &mut spec
            {
                named_key_labels.retain(|l| !destroyed.contains(l));
            }
            spec
        };
        let inner = open_custodian(Layer::Inner, &spec(Layer::Inner));
        let outer = open_custodian(Layer::Outer, &spec(Layer::Outer));
        let handle = twofold::serve::start(settings, inner, outer, self.keyring)?;
        Ok(Gateway {
            handle,
            admin: self.admin.clone(),
        })
    }

    fn gw(&self) -> &Gateway {
        self.gateway
            .as_ref()
            .unwrap_or_else(|| panic!("the gateway was stopped"))
    }

    /// Stops the gateway (the backend keeps running).
    pub fn stop_gateway(&mut self) {
        if let Some(g) = self.gateway.take() {
            g.stop();
        }
    }

    /// Where the gateway listens.
    pub fn addr(&self) -> SocketAddr {
        self.gw().addr()
    }

    /// Where the gateway's admin listener is (started with
    /// [`Options::admin_listener`]).
    pub fn admin_addr(&self) -> SocketAddr {
        self.gw()
            .admin_addr()
            .unwrap_or_else(|| panic!("this gateway was started without an admin listener"))
    }

    /// The gateway's port.
    pub fn port(&self) -> u16 {
        self.addr().port()
    }

    /// `http://127.0.0.1:PORT` of the gateway.
    pub fn endpoint(&self) -> String {
        self.gw().endpoint()
    }

    /// The credential allowed on every bucket, with every grant.
    pub fn admin(&self) -> &Credential {
        &self.admin
    }

    /// The credential allowed on [`LIMITED_BUCKET`] only, with no grants beyond its data.
    pub fn limited(&self) -> &Credential {
        &self.limited
    }

    /// The custodians' settings (the two tokens).
    pub fn custody(&self) -> &Custody {
        &self.custody
    }

    /// An SDK client of the gateway with the all-buckets credential: path-style, us-east-1,
    /// retries off (a test sees the first answer), [`OPERATION_TIMEOUT`].
    pub fn client(&self) -> Client {
        self.client_as(&self.admin)
    }

    /// An SDK client of the gateway signing with `cred`.
    pub fn client_as(&self, cred: &Credential) -> Client {
        client_for(&self.endpoint(), cred)
    }

    /// A configuration builder for a gateway client with `cred`, to adjust before building.
    pub fn config_builder(&self, cred: &Credential) -> aws_sdk_s3::config::Builder {
        config_builder(&self.endpoint(), cred)
    }

    /// An SDK client of the gateway that records the headers of every request it sends.
    pub fn recording_client(&self) -> (Client, Recorder) {
        let recorder = Recorder::default();
        let conf = self
            .config_builder(&self.admin)
            .interceptor(recorder.clone())
            .build();
        (Client::from_conf(conf), recorder)
    }

    /// An SDK client straight to the backend, with the backend's own credential: it sees
    /// what is stored.
    pub fn backend_client(&self) -> Client {
        client_for(&format!("http://{}", self.backend_addr), &self.backend_cred)
    }

    /// The backend's own HEAD of `bucket`/`key`: its metadata and headers as stored.
    pub async fn backend_head(
        &self,
        bucket: &str,
        key: &str,
    ) -> aws_sdk_s3::operation::head_object::HeadObjectOutput {
        self.backend_client()
            .head_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("backend HEAD {bucket}/{key}: {e:?}"))
    }

    /// [`TestGateway::backend_client`] with an HTTP client of its own, for
    /// [`backend::block_on_thread`].
    fn backend_client_apart(&self) -> Client {
        let conf = config_builder(&format!("http://{}", self.backend_addr), &self.backend_cred)
            .http_client(backend::own_http_client())
            .build();
        Client::from_conf(conf)
    }

    /// The `[custodian.LAYER]` table of a configuration file naming this gateway's token
    /// for `layer`, as an operator's host (or a recovery host) has it.
    pub fn custodian_config(&self, layer: Layer) -> String {
        self.custody.config_table(layer)
    }

    /// A configuration file in `dir` as an operator's host has it for the key commands
    /// (`twofold keys ...`, `twofold rewrap`): both tokens, the named keys `named` (labels
    /// as [`named_key_label`] gives them), the backend this gateway stores in, then
    /// `extra` (more tables).
    pub fn operator_config(&self, dir: &Path, named: &[&str], extra: &str) -> PathBuf {
        let named: String = named
            .iter()
            .map(|id| {
                format!(
                    "[[named_key]]\nid = \"{id}\"\ninner_key_label = \"{}\"\nouter_key_label = \"{}\"\n\n",
                    named_key_label(id, Layer::Inner),
                    named_key_label(id, Layer::Outer)
                )
            })
            .collect();
        let cred = self.backend_credential();
        let backend = format!(
            "[server]\nplain_http = true\n\n[backend]\nendpoint = \"http://{}\"\nplain_http = true\nregion = \"us-east-1\"\n\
             access_key_id = \"{}\"\nsecret_access_key = {{ dev_plaintext = \"{}\" }}\n\n\
             [[credential]]\naccess_key_id = \"operator\"\nsecret_access_key = {{ dev_plaintext = \"x\" }}\n\
             buckets = [\"*\"]\n",
            self.backend_addr(),
            cred.access_key_id,
            cred.secret
        );
        let path = dir.join("twofold.toml");
        std::fs::write(
            &path,
            format!(
                "{extra}\n{}{}{named}{backend}",
                self.custodian_config(Layer::Outer),
                self.custodian_config(Layer::Inner)
            ),
        )
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        path
    }

    /// The backend's own credential (what the gateway signs its backend requests with).
    pub fn backend_credential(&self) -> &Credential {
        &self.backend_cred
    }

    /// Where the backend listens (also after [`TestGateway::stop_backend`]).
    pub fn backend_addr(&self) -> SocketAddr {
        self.backend_addr
    }

    /// Which backend this is.
    pub fn backend_kind(&self) -> BackendKind {
        BackendKind::from_env()
    }

    /// True, after reporting the test as skipped with `reason`
    /// ([`backend::report_skip`]), when the backend lacks `cap`: the test returns at once.
    pub fn skip_unless(&self, cap: Capability, reason: &str) -> bool {
        let lacks = !self.backend_kind().has(cap);
        if lacks {
            backend::report_skip(self.backend_kind(), reason);
        }
        lacks
    }

    /// True, after reporting the test as skipped with `reason`, when the backend is one of
    /// `kinds` (for what a backend does differently, or a known gateway bug there).
    pub fn skip_on(&self, kinds: &[BackendKind], reason: &str) -> bool {
        let skip = kinds.contains(&self.backend_kind());
        if skip {
            backend::report_skip(self.backend_kind(), reason);
        }
        skip
    }

    fn fs_root(&self, what: &str) -> &Path {
        match &self.store {
            Store::S3sFs { root, .. } => root,
            _ => panic!(
                "{what} needs s3s-fs's folder, not {}: guard the test with \
                 skip_unless(Capability::BackendFolder, ..)",
                self.backend_kind().name()
            ),
        }
    }

    /// The backend's folder (s3s-fs only, [`Capability::BackendFolder`]): one sub-folder
    /// per bucket, one file per object, and s3s-fs's hidden `.bucket-*.metadata.json` /
    /// `.internal.json` files beside them.
    pub fn backend_root(&self) -> &Path {
        self.fs_root("backend_root")
    }

    /// The file holding the stored bytes of `bucket/key` (s3s-fs only).
    pub fn stored_path(&self, bucket: &str, key: &str) -> PathBuf {
        self.fs_root("stored_path").join(bucket).join(key)
    }

    /// The stored bytes of `bucket/key`, if the backend has the object (s3s-fs: its file;
    /// others: a GET with the backend's credential).
    pub fn stored(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        if let Store::S3sFs { root, .. } = &self.store {
            return std::fs::read(root.join(bucket).join(key)).ok();
        }
        backend::block_on_thread(|| async {
            let s3 = self.backend_client_apart();
            match s3.get_object().bucket(bucket).key(key).send().await {
                Ok(out) => Some(
                    out.body
                        .collect()
                        .await
                        .unwrap_or_else(|e| panic!("reading stored {bucket}/{key}: {e:?}"))
                        .to_vec(),
                ),
                Err(e) if status_code(&e).0 == 404 => None,
                Err(e) => panic!("GET of stored {bucket}/{key}: {e:?}"),
            }
        })
    }

    /// Replaces the stored bytes of `bucket/key`, keeping its backend metadata: what someone
    /// with backend access could do (s3s-fs: the file; others: a GET and a PUT with the
    /// backend's credential).
    pub fn overwrite_stored(&self, bucket: &str, key: &str, bytes: &[u8]) {
        if let Store::S3sFs { root, .. } = &self.store {
            let path = root.join(bucket).join(key);
            std::fs::write(&path, bytes)
                .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
            return;
        }
        backend::block_on_thread(|| async {
            let s3 = self.backend_client_apart();
            let head = s3
                .head_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .unwrap_or_else(|e| panic!("HEAD of stored {bucket}/{key}: {e:?}"));
            s3.put_object()
                .bucket(bucket)
                .key(key)
                .set_metadata(head.metadata().cloned())
                .body(bytes.to_vec().into())
                .send()
                .await
                .unwrap_or_else(|e| panic!("PUT of stored {bucket}/{key}: {e:?}"));
        });
    }

    /// Replaces the stored object `bucket/key` with `bytes` and exactly the user metadata
    /// `metadata`, through the backend's own S3 API, as a one-part multipart upload (so
    /// that it still looks multipart: its ETag ends in `-1`): what a backend, or anyone
    /// with its credentials, can do on every backend.
    pub async fn replace_stored(
        &self,
        bucket: &str,
        key: &str,
        bytes: &[u8],
        metadata: &std::collections::HashMap<String, String>,
    ) {
        use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
        let s3 = self.backend_client();
        let fail = |step: &str, e: &dyn std::fmt::Debug| -> ! {
            panic!("{step} of stored {bucket}/{key}: {e:?}")
        };
        let up = s3
            .create_multipart_upload()
            .bucket(bucket)
            .key(key)
            .set_metadata(Some(metadata.clone()))
            .send()
            .await
            .unwrap_or_else(|e| fail("CreateMultipartUpload", &e));
        let id = up.upload_id().unwrap_or_default();
        let part = s3
            .upload_part()
            .bucket(bucket)
            .key(key)
            .upload_id(id)
            .part_number(1)
            .body(bytes.to_vec().into())
            .send()
            .await
            .unwrap_or_else(|e| fail("UploadPart", &e));
        let done = CompletedPart::builder()
            .part_number(1)
            .set_e_tag(part.e_tag().map(str::to_owned))
            .build();
        s3.complete_multipart_upload()
            .bucket(bucket)
            .key(key)
            .upload_id(id)
            .multipart_upload(CompletedMultipartUpload::builder().parts(done).build())
            .send()
            .await
            .unwrap_or_else(|e| fail("CompleteMultipartUpload", &e));
    }

    /// The parts of unfinished multipart uploads the backend holds, sorted. s3s-fs keeps
    /// them as `.upload_id-ID.part-N` files in its root: file name and bytes. Other
    /// backends do not give part bytes back: `bucket/key upload ID part N` and the part's
    /// ETag (the MD5 of its bytes) and size, from ListMultipartUploads and ListParts.
    pub fn stored_multipart_parts(&self) -> Vec<(String, Vec<u8>)> {
        let mut out = match &self.store {
            Store::S3sFs { root, .. } => std::fs::read_dir(root)
                .unwrap_or_else(|e| panic!("reading the backend folder: {e}"))
                .filter_map(Result::ok)
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    (name.starts_with(".upload_id-") && name.contains(".part-"))
                        .then(|| (name, std::fs::read(e.path()).unwrap_or_default()))
                })
                .collect(),
            _ => backend::block_on_thread(|| listed_parts(self.backend_client_apart())),
        };
        out.sort();
        out
    }

    /// Stops the backend (the gateway keeps running and must now answer with errors);
    /// s3s-fs only ([`Capability::StopStart`]).
    pub fn stop_backend(&mut self) {
        match &mut self.store {
            Store::S3sFs { server, .. } => drop(server.take()),
            _ => panic!("stop_backend: guard the test with skip_unless(Capability::StopStart, ..)"),
        }
    }

    /// Starts the backend again on the same address and folder.
    pub fn restart_backend(&mut self) {
        let Store::S3sFs { server, root } = &mut self.store else {
            panic!("restart_backend: guard the test with skip_unless(Capability::StopStart, ..)");
        };
        assert!(server.is_none(), "the backend is running");
        let backend = DevBackend::start(
            self.backend_addr,
            root,
            &self.backend_cred.access_key_id,
            &self.backend_cred.secret,
        )
        .unwrap_or_else(|e| panic!("restarting the dev backend: {e}"));
        *server = Some(backend);
    }

    /// Fails if any [`PLAINTEXT_WINDOW_BYTES`]-byte window of any of `plaintexts` appears in
    /// what the backend stores: on s3s-fs, any file under its folder (hidden metadata and
    /// part files included); on the others, the body and the metadata of every object of
    /// every bucket of the backend user (parts of unfinished uploads cannot be read back
    /// there). Plaintexts shorter than a window are looked for whole if they are at least
    /// [`PLAINTEXT_SHORT_BYTES_MIN`] long; shorter ones would match by chance and are skipped.
    #[track_caller]
    pub fn assert_no_plaintext_in_backend(&self, plaintexts: &[&[u8]]) {
        let hits = match &self.store {
            Store::S3sFs { root, .. } => find_plaintext(root, plaintexts),
            _ => {
                let stored = backend::block_on_thread(|| every_object(self.backend_client_apart()));
                find_plaintext_in(stored, plaintexts)
            }
        };
        assert!(
            hits.is_empty(),
            "plaintext found in the backend: {}",
            hits.iter()
                .map(|h| format!(
                    "{} at byte {} (a window of plaintext #{})",
                    h.file.display(),
                    h.offset,
                    h.plaintext
                ))
                .collect::<Vec<_>>()
                .join("; ")
        );
    }

    /// Signs a request to the gateway with `cred` (header authentication) and returns every
    /// header to send with it: `host`, then `headers` (all signed), then `authorization`,
    /// `x-amz-date` and `x-amz-content-sha256`; and, for a streaming signed payload, the
    /// chain that signs its chunks. `path` and `query` are given as they will be sent.
    pub fn sign(
        &self,
        cred: &Credential,
        method: &str,
        path: &str,
        query: Option<&str>,
        headers: &[(&str, &str)],
        payload: PayloadMode,
    ) -> (Vec<(String, String)>, Option<ChunkSigner>) {
        sign_for(
            &self.addr().to_string(),
            cred,
            method,
            path,
            query,
            headers,
            payload,
        )
    }
}

/// A request to send signed over a raw socket with [`TestGateway::send_signed`], for what an
/// SDK would normalise or refuse to send (dot segments, hand-written XML, odd headers).
#[derive(Debug, Clone, Default)]
pub struct RawRequest<'a> {
    /// `GET`, `PUT`, ...
    pub method: &'a str,
    /// The path, exactly as sent (and signed).
    pub path: &'a str,
    /// The query, exactly as sent, without `?`.
    pub query: Option<&'a str>,
    /// The Host header; `None`: the gateway's address (path-style).
    pub host: Option<&'a str>,
    /// Further headers, all signed.
    pub headers: &'a [(&'a str, &'a str)],
    /// The body; its SHA-256 is signed.
    pub body: &'a [u8],
}

impl TestGateway {
    /// Signs `req` with `cred` and sends it on a new connection; the response.
    pub fn send_signed(&self, cred: &Credential, req: &RawRequest<'_>) -> crate::rawhttp::Response {
        use sha2::Digest;
        let host = req
            .host
            .map_or_else(|| self.addr().to_string(), str::to_owned);
        let payload = PayloadMode::Sha256(sha2::Sha256::digest(req.body).into());
        let (mut headers, _) = sign_for(
            &host,
            cred,
            req.method,
            req.path,
            req.query,
            req.headers,
            payload,
        );
        headers.push(("content-length".to_owned(), req.body.len().to_string()));
        let target = match req.query {
            Some(q) => format!("{}?{q}", req.path),
            None => req.path.to_owned(),
        };
        let mut bytes = crate::rawhttp::head(req.method, &target, &headers);
        bytes.extend_from_slice(req.body);
        crate::rawhttp::exchange(self.addr(), &bytes, req.method == "HEAD")
    }
}

/// Starts (s3s-fs, moto) or sets up (a Ceph tenant user) the backend of one test gateway,
/// in `dir`: the backend, its address and its credential.
fn start_backend(dir: &Path) -> (Store, SocketAddr, Credential) {
    match BackendKind::from_env() {
        BackendKind::S3sFs => {
            let cred = Credential::random("BACKEND");
            let server = DevBackend::start(
                loopback0(),
                &dir.join("backend"),
                &cred.access_key_id,
                &cred.secret,
            )
            .unwrap_or_else(|e| panic!("starting the dev backend: {e}"));
            let addr = server.addr();
            let root = server.root().to_path_buf();
            let store = Store::S3sFs {
                server: Some(server),
                root,
            };
            (store, addr, cred)
        }
        BackendKind::Ceph => {
            let (addr, cred) = backend::ceph_tenant_user();
            (Store::Ceph, addr, cred)
        }
        BackendKind::Moto => {
            let server = MotoServer::start(&dir.join("moto.log"));
            let addr = server.addr();
            (
                Store::Moto { _server: server },
                addr,
                Credential::random("MOTO"),
            )
        }
    }
}

/// `127.0.0.1:0`.
pub fn loopback0() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// Signs a request for `host` (see [`TestGateway::sign`]).
pub fn sign_for(
    host: &str,
    cred: &Credential,
    method: &str,
    path: &str,
    query: Option<&str>,
    headers: &[(&str, &str)],
    payload: PayloadMode,
) -> (Vec<(String, String)>, Option<ChunkSigner>) {
    let input = SigningInput {
        method,
        host,
        path,
        query: query.map_or(sigv4::Query::None, sigv4::Query::Raw),
        headers,
        payload,
    };
    let out = sigv4::sign(
        &input,
        &cred.access_key_id,
        &sigv4::Secret::new(cred.secret.clone()),
        REGION,
        SystemTime::now(),
    )
    .unwrap_or_else(|e| panic!("signing {method} {path}: {e}"));
    let mut all = vec![("host".to_owned(), host.to_owned())];
    all.extend(
        headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned())),
    );
    all.extend(
        out.headers()
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned())),
    );
    (all, out.chunk_signer)
}

/// An aws-chunked body with every chunk signed (`STREAMING-AWS4-HMAC-SHA256-PAYLOAD`):
/// `chunk_bytes` per chunk, then the signed empty chunk.
pub fn aws_chunked_signed(data: &[u8], chunk_bytes: usize, signer: &mut ChunkSigner) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 256);
    for chunk in data.chunks(chunk_bytes.max(1)) {
        let sig = signer.sign_chunk(chunk);
        out.extend_from_slice(format!("{:x};chunk-signature={sig}\r\n", chunk.len()).as_bytes());
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    let sig = signer.sign_chunk(b"");
    out.extend_from_slice(format!("0;chunk-signature={sig}\r\n\r\n").as_bytes());
    out
}

/// An aws-chunked body without signatures (`STREAMING-UNSIGNED-PAYLOAD-TRAILER`), ending
/// with the trailer fields `trailers` (`name`, `value`).
pub fn aws_chunked_unsigned(data: &[u8], chunk_bytes: usize, trailers: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 256);
    for chunk in data.chunks(chunk_bytes.max(1)) {
        out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n");
    for (n, v) in trailers {
        out.extend_from_slice(format!("{n}:{v}\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// A configuration builder for a client of `endpoint` signing with `cred`: path-style,
/// [`REGION`], retries off, [`OPERATION_TIMEOUT`].
pub fn config_builder(endpoint: &str, cred: &Credential) -> aws_sdk_s3::config::Builder {
    aws_sdk_s3::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .credentials_provider(Credentials::new(
            cred.access_key_id.clone(),
            cred.secret.clone(),
            None,
            None,
            "twofold-tests",
        ))
        .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
        .timeout_config(
            aws_sdk_s3::config::timeout::TimeoutConfig::builder()
                .operation_timeout(OPERATION_TIMEOUT)
                .connect_timeout(Duration::from_secs(10))
                .build(),
        )
}

/// A client of `endpoint` signing with `cred` (see [`config_builder`]).
pub fn client_for(endpoint: &str, cred: &Credential) -> Client {
    Client::from_conf(config_builder(endpoint, cred).build())
}

/// Records the headers of every request a client sends, after signing (what went out).
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    sent: Arc<Mutex<Vec<SentRequest>>>,
}

/// One request as the SDK sent it.
#[derive(Debug, Clone)]
pub struct SentRequest {
    /// Method.
    pub method: String,
    /// The URI.
    pub uri: String,
    /// Header fields, names lower-cased.
    pub headers: Vec<(String, String)>,
}

impl SentRequest {
    /// The value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl Recorder {
    /// The requests sent so far.
    pub fn sent(&self) -> Vec<SentRequest> {
        self.sent.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// The last request sent.
    pub fn last(&self) -> SentRequest {
        self.sent()
            .pop()
            .unwrap_or_else(|| panic!("no request was recorded"))
    }

    /// Forgets what was recorded.
    pub fn clear(&self) {
        if let Ok(mut v) = self.sent.lock() {
            v.clear();
        }
    }
}

impl Intercept for Recorder {
    fn name(&self) -> &'static str {
        "twofold-tests-recorder"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let req = context.request();
        let sent = SentRequest {
            method: req.method().to_owned(),
            uri: req.uri().to_owned(),
            headers: req
                .headers()
                .iter()
                .map(|(n, v)| (n.to_ascii_lowercase(), v.to_owned()))
                .collect(),
        };
        if let Ok(mut v) = self.sent.lock() {
            v.push(sent);
        }
        Ok(())
    }
}

/// Sends every request to `addr` whatever host its URI names, keeping the `Host` header the
/// request was signed with: virtual-hosted-style addressing (`bucket.localhost`) without
/// DNS for it.
#[derive(Debug, Clone)]
pub struct ConnectTo {
    /// Where to connect.
    pub addr: SocketAddr,
}

impl Intercept for ConnectTo {
    fn name(&self) -> &'static str {
        "twofold-tests-connect-to"
    }

    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let req = context.request_mut();
        let uri = req.uri().to_owned();
        let rest = uri
            .strip_prefix("http://")
            .ok_or_else(|| format!("not an http URI: {uri}"))?;
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        req.headers_mut().insert("host", authority.to_owned());
        req.set_uri(format!("http://{}{path}", self.addr))?;
        Ok(())
    }
}

/// The HTTP status and S3 error code of a failed SDK call. Panics if there was no
/// response at all (a connection failure, a timeout).
#[track_caller]
pub fn status_code<E: ProvideErrorMetadata + std::fmt::Debug>(
    e: &SdkError<E, HttpResponse>,
) -> (u16, String) {
    let Some(resp) = e.raw_response() else {
        panic!("no response from the gateway: {e:?}");
    };
    (
        resp.status().as_u16(),
        e.code().unwrap_or_default().to_owned(),
    )
}

/// Creates `bucket` through `s3`.
pub async fn create_bucket(s3: &Client, bucket: &str) {
    s3.create_bucket()
        .bucket(bucket)
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateBucket {bucket}: {e:?}"));
}

/// PutObject of `data` (in memory: the SDK sends its checksum as a header and signs the
/// payload hash) and returns the ETag.
pub async fn put(s3: &Client, bucket: &str, key: &str, data: Vec<u8>) -> String {
    let out = s3
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(data.into())
        .send()
        .await
        .unwrap_or_else(|e| panic!("PutObject {bucket}/{key}: {e:?}"));
    out.e_tag().unwrap_or_default().to_owned()
}

/// CreateMultipartUpload of `bucket/key`; returns the upload id the gateway issued.
pub async fn create_upload(s3: &Client, bucket: &str, key: &str) -> String {
    let out = s3
        .create_multipart_upload()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateMultipartUpload {bucket}/{key}: {e:?}"));
    out.upload_id().unwrap_or_default().to_owned()
}

/// The CompleteMultipartUpload document of parts numbered from 1 with these ETags.
pub fn completed<S: AsRef<str>>(etags: &[S]) -> aws_sdk_s3::types::CompletedMultipartUpload {
    use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
    let parts = (1..).zip(etags).map(|(n, e)| {
        CompletedPart::builder()
            .part_number(n)
            .e_tag(e.as_ref())
            .build()
    });
    CompletedMultipartUpload::builder()
        .set_parts(Some(parts.collect()))
        .build()
}

/// UploadPart `number` of upload `id` of `bucket/key`, with `data` as its body.
pub async fn upload_part(
    s3: &Client,
    (bucket, key, id): (&str, &str, &str),
    number: i32,
    data: Vec<u8>,
) -> Result<
    aws_sdk_s3::operation::upload_part::UploadPartOutput,
    SdkError<aws_sdk_s3::operation::upload_part::UploadPartError, HttpResponse>,
> {
    s3.upload_part()
        .bucket(bucket)
        .key(key)
        .upload_id(id)
        .part_number(number)
        .body(data.into())
        .send()
        .await
}

/// GetObject of the whole body.
pub async fn get(s3: &Client, bucket: &str, key: &str) -> Vec<u8> {
    let out = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetObject {bucket}/{key}: {e:?}"));
    out.body
        .collect()
        .await
        .unwrap_or_else(|e| panic!("reading GetObject {bucket}/{key}: {e:?}"))
        .to_vec()
}

/// Whether `bucket/key` exists, asked through `s3` (HeadObject: 200 yes, 404 no).
pub async fn exists(s3: &Client, bucket: &str, key: &str) -> bool {
    match s3.head_object().bucket(bucket).key(key).send().await {
        Ok(_) => true,
        Err(e) => {
            let (status, _) = status_code(&e);
            assert_eq!(status, 404, "HeadObject {bucket}/{key}: {e:?}");
            false
        }
    }
}

/// A place where plaintext was found.
#[derive(Debug, Clone)]
pub struct PlaintextHit {
    /// The file.
    pub file: PathBuf,
    /// Offset of the window in the file.
    pub offset: usize,
    /// Index of the plaintext in the list given.
    pub plaintext: usize,
}

/// A hasher for keys that are hashes already ([`window_hash`]): the key itself.
#[derive(Debug, Default)]
struct Premixed(u64);

impl Hasher for Premixed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

fn window_hash(w: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    let mut b = [0u8; 8];
    a.copy_from_slice(&w[..8]);
    b.copy_from_slice(&w[8..16]);
    let a = u64::from_le_bytes(a);
    let b = u64::from_le_bytes(b);
    (a ^ b.rotate_left(29)).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Every file under `dir`, recursively, hidden ones included.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => todo.push(p),
                Ok(t) if t.is_file() => out.push(p),
                _ => {}
            }
        }
    }
    out.sort();
    out
}

/// Where any [`PLAINTEXT_WINDOW_BYTES`]-byte window of `plaintexts` occurs in the files
/// under `dir` (at most one hit per file). Plaintexts shorter than a window are looked
/// for whole if at least [`PLAINTEXT_SHORT_BYTES_MIN`] long.
pub fn find_plaintext(dir: &Path, plaintexts: &[&[u8]]) -> Vec<PlaintextHit> {
    let files = files_under(dir)
        .into_iter()
        .filter_map(|file| std::fs::read(&file).ok().map(|bytes| (file, bytes)));
    find_plaintext_in(files, plaintexts)
}

/// Where any window of `plaintexts` occurs in `stored` (name and bytes), as
/// [`find_plaintext`] looks for them.
pub fn find_plaintext_in(
    stored: impl IntoIterator<Item = (PathBuf, Vec<u8>)>,
    plaintexts: &[&[u8]],
) -> Vec<PlaintextHit> {
    const W: usize = PLAINTEXT_WINDOW_BYTES;
    // Window hashes are mixed already: a set keyed by them as they are looks up in one
    // step, where a binary search took ~25 (minutes for a few 10 MiB objects, unoptimised).
    let hashes: HashSet<u64, BuildHasherDefault<Premixed>> = plaintexts
        .iter()
        .filter(|p| p.len() >= W)
        .flat_map(|p| p.windows(W).map(window_hash))
        .collect();
    let which = |w: &[u8]| {
        plaintexts
            .iter()
            .position(|p| p.len() >= W && p.windows(W).any(|pw| pw == w))
    };
    let mut hits = Vec::new();
    for (file, bytes) in stored {
        let mut hit = None;
        if bytes.len() >= W {
            for (offset, w) in bytes.windows(W).enumerate() {
                if hashes.contains(&window_hash(w))
                    && let Some(i) = which(w)
                {
                    hit = Some((offset, i));
                    break;
                }
            }
        }
        if hit.is_none() {
            for (i, p) in plaintexts.iter().enumerate() {
                if p.len() >= PLAINTEXT_SHORT_BYTES_MIN
                    && p.len() < W
                    && let Some(offset) = bytes.windows(p.len()).position(|w| w == *p)
                {
                    hit = Some((offset, i));
                    break;
                }
            }
        }
        if let Some((offset, plaintext)) = hit {
            hits.push(PlaintextHit {
                file,
                offset,
                plaintext,
            });
        }
    }
    hits
}
