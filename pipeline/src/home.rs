//! Viewer and camera home directories: where keys, backups and trusted lists live on disk.
//!
//! What this module does **not** do: it holds no cryptography of its own (that is
//! [`crate::keys`]), and it does not lock a home against concurrent writers (two `camera
//! trust` runs at once can race; the last rename wins).
//!
//! Every file is written atomically: a temporary file in the same directory, `fsync`, rename
//! (or link, when an existing file must not be replaced), then `fsync` of the directory. A
//! private key is created with mode 0600 from its first byte, so it is never readable by
//! others, even briefly. Directories this module creates get mode 0700.
//!
//! Layout (see `docs/PROTOCOL.md`):
//! ```text
//! viewer home:  account.key (0600)  account.pub  account.backup (0600)  account.kem
//!               recipients.version  recipients.list  devices/NAME.pub  pinned-cameras
//!               device.key (0600, this device's own key, X-Wing or X25519)
//! camera home:  camera.key (0600)  camera.pub  pinned-account  recipients.list
//! ```
//!
//! `pinned-cameras` lists the cameras whose footage `camseal decrypt` accepts without
//! `--camera`, in the order they were pinned: a `camseal-pinned-cameras-v1` line, then one
//! `camera <64 hex digits of the Ed25519 key> <name>` line per camera. Keys, camera ids and
//! names are unique in it. A missing file pins nothing. [`choose_camera`] is the decision
//! `decrypt` makes with it.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::fsutil::{self, PRIVATE, PUBLIC};
use crate::keys::{
    AccountPin, AccountPublic, AccountSecret, CameraPublic, CameraSecret, DevicePublic, KemKind,
    KeyError, Recipient, RecipientList, RecipientSecret,
};

/// Why a home directory operation failed. Messages name the file involved; the underlying
/// cause (an OS error, a format problem) is the error's `source()`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HomeError {
    /// `init` or `restore` found an existing account.
    #[error("an account already exists in {}: refusing to overwrite it", dir.display())]
    AccountExists {
        /// The viewer home.
        dir: PathBuf,
    },
    /// A file holds something that is not what it should be.
    #[error("invalid {}", path.display())]
    BadFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: KeyError,
    },
    /// A state file of the home is inconsistent or damaged.
    #[error("{}: {reason}", path.display())]
    BadState {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// `camera init` found an existing camera identity.
    #[error("a camera identity already exists in {}: refusing to overwrite it", dir.display())]
    CameraExists {
        /// The camera home.
        dir: PathBuf,
    },
    /// Another pinned camera already has this camera's id (a 64-bit id collision).
    #[error("another pinned camera already has the camera id {id}")]
    CameraIdTaken {
        /// The camera id.
        id: String,
    },
    /// Another pinned camera already has this name.
    #[error("the name {name:?} is already used by pinned camera {id}: choose another name")]
    CameraNameTaken {
        /// The name.
        name: String,
        /// Id of the camera that has it.
        id: String,
    },
    /// A new recipient list is signed by another account than the one the camera pinned.
    #[error(
        "recipient list is signed by a different account (pinned: {pinned}, got: {got}); \
         to move this camera to another account on purpose, remove the pinned-account \
         and recipients.list files from its home and run `camera trust` again"
    )]
    DifferentAccount {
        /// Id of the pinned account.
        pinned: String,
        /// Id of the account that signed the offered list.
        got: String,
    },
    /// A file that must not be replaced already exists.
    #[error("{} already exists: refusing to overwrite it", path.display())]
    FileExists {
        /// The file.
        path: PathBuf,
    },
    /// A device name that cannot be used.
    #[error("invalid device name {name:?}: {reason}")]
    InvalidDeviceName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A camera name that cannot be used.
    #[error("invalid camera name {name:?}: {reason}")]
    InvalidCameraName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The offered recipient list does not parse or its signature does not verify.
    #[error("not a valid signed recipient list")]
    InvalidList(#[source] KeyError),
    /// A file system operation failed.
    #[error("cannot {action} {}", path.display())]
    Io {
        /// What was attempted ("read", "write", "create directory", ...).
        action: &'static str,
        /// The path it was attempted on.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A key failed to generate or sign (the OS random generator failed, say).
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The private key does not belong to the public key next to it.
    #[error("{} does not match {}", key.display(), public.display())]
    KeyMismatch {
        /// The private key file.
        key: PathBuf,
        /// The public key file.
        public: PathBuf,
    },
    /// The camera home has no camera identity yet.
    #[error(
        "no camera identity in {dir}: run `camseal camera init --home {dir}`",
        dir = dir.display()
    )]
    NoCamera {
        /// The camera home.
        dir: PathBuf,
    },
    /// A path that should be a directory is something else.
    #[error("{} is not a directory", path.display())]
    NotADirectory {
        /// The path.
        path: PathBuf,
    },
    /// The offered recipient list is not newer than the installed one.
    #[error("recipient list version {version} is not newer than the installed version {installed}")]
    NotNewer {
        /// Version of the offered list.
        version: u64,
        /// Version of the installed list.
        installed: u64,
    },
    /// The directory is a home of the other kind: a camera home given where a viewer home
    /// is wanted, or the reverse. Told apart from an empty directory so that the message
    /// never suggests running `init` over the wrong home.
    #[error(
        "{dir} is a {found} home, not a {wanted} home: pass the {wanted}'s home directory (`--home`)",
        dir = dir.display()
    )]
    WrongKind {
        /// The directory given.
        dir: PathBuf,
        /// The kind of home that was wanted ("camera" or "viewer").
        wanted: &'static str,
        /// The kind of home the directory holds.
        found: &'static str,
    },
    /// The viewer home has no account yet.
    #[error(
        "no viewer account in {dir}: run `camseal viewer init --home {dir}`",
        dir = dir.display()
    )]
    NoViewerAccount {
        /// The viewer home.
        dir: PathBuf,
    },
    /// A file is larger than anything camseal writes there.
    #[error("{} is larger than {limit} bytes: not a camseal file", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit.
        limit: u64,
    },
    /// No pinned camera matches.
    #[error("no camera with id or name {which:?} is pinned in {}", dir.display())]
    UnknownCamera {
        /// The id or name asked for (the camera id, when asked for by key).
        which: String,
        /// The viewer home.
        dir: PathBuf,
    },
    /// No device of that name is listed in the viewer home.
    #[error("no device named {name:?} in {}", dir.display())]
    UnknownDevice {
        /// The name asked for.
        name: String,
        /// The viewer home.
        dir: PathBuf,
    },
    /// The offered list names a recipient whose KEM this camera cannot seal to.
    #[error(
        "recipient {position} ({label:?}) uses KEM 0x{kem:04x}, which this camera cannot seal to"
    )]
    UnsupportedKem {
        /// 1-based position in the list.
        position: usize,
        /// The recipient's label.
        label: String,
        /// The KEM id.
        kem: u16,
    },
}

/// Why [`choose_camera`] refuses footage: it comes from a camera the viewer did not pin, and
/// no camera was named for this run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CameraChoiceError {
    /// No camera was named and the footage names none (there are no segments).
    #[error("no segment names a camera to check the footage against")]
    NoFootage,
    /// The viewer home pins no camera at all.
    #[error(
        "no cameras are pinned in {}: refusing footage from camera {}",
        home.display(),
        camera.id()
    )]
    NonePinned {
        /// The camera the footage names.
        camera: CameraPublic,
        /// The viewer home.
        home: PathBuf,
    },
    /// The footage's camera is not among the pinned ones.
    #[error(
        "camera {} is not pinned in {}: refusing its footage",
        camera.id(),
        home.display()
    )]
    NotPinned {
        /// The camera the footage names.
        camera: CameraPublic,
        /// The viewer home.
        home: PathBuf,
    },
}

impl CameraChoiceError {
    /// The refused camera, if the footage named one.
    pub fn camera(&self) -> Option<&CameraPublic> {
        match self {
            CameraChoiceError::NoFootage => None,
            CameraChoiceError::NonePinned { camera, .. }
            | CameraChoiceError::NotPinned { camera, .. } => Some(camera),
        }
    }

    /// The viewer home whose pins were consulted, if any.
    pub fn home(&self) -> Option<&Path> {
        match self {
            CameraChoiceError::NoFootage => None,
            CameraChoiceError::NonePinned { home, .. }
            | CameraChoiceError::NotPinned { home, .. } => Some(home),
        }
    }
}

/// The kind named by the text of an `account.kem` file: the header line, then `kem NAME`.
fn decode_account_kem(text: &str) -> Option<KemKind> {
    let body = text.strip_suffix('\n').unwrap_or(text);
    let (header, line) = body.split_once('\n')?;
    if header != ACCOUNT_KEM_HEADER {
        return None;
    }
    let name = line.strip_prefix("kem ")?;
    [KemKind::XWing, KemKind::X25519]
        .into_iter()
        .find(|k| k.name() == name)
}

/// A viewer home directory: the account key, its public half, its backup, the version
/// counter of the recipient lists it signed, and the cameras it pins.
#[derive(Debug, Clone)]
pub struct ViewerHome {
    dir: PathBuf,
}

impl ViewerHome {
    /// A handle on `dir` that touches nothing on disk (to check for an account before
    /// creating anything). [`ViewerHome::create`] makes the directory.
    pub fn at(dir: impl Into<PathBuf>) -> Self {
        ViewerHome { dir: dir.into() }
    }

    /// Creates the directory if needed (mode 0700) and returns the home, whether or not it
    /// holds an account yet.
    pub fn create(dir: impl Into<PathBuf>) -> Result<Self, HomeError> {
        let dir = dir.into();
        ensure_dir(&dir)?;
        Ok(ViewerHome { dir })
    }

    /// Opens a home that holds an account, or only a device key (a device enrolled by
    /// another home of the account, see [`ViewerHome::write_device_key`]).
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, HomeError> {
        let home = ViewerHome { dir: dir.into() };
        if !home.has_account()? && !exists(&home.device_key_path())? {
            if home.dir.join(CAMERA_KEY).exists() {
                return Err(HomeError::WrongKind {
                    dir: home.dir,
                    wanted: "viewer",
                    found: "camera",
                });
            }
            return Err(HomeError::NoViewerAccount { dir: home.dir });
        }
        Ok(home)
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `DIR/account.key`.
    pub fn key_path(&self) -> PathBuf {
        self.dir.join(ACCOUNT_KEY)
    }

    /// `DIR/account.pub`.
    pub fn public_path(&self) -> PathBuf {
        self.dir.join(ACCOUNT_PUB)
    }

    /// `DIR/account.backup`.
    pub fn backup_path(&self) -> PathBuf {
        self.dir.join(ACCOUNT_BACKUP)
    }

    /// `DIR/devices`: one `NAME.pub` per viewer device that gets its own recipient entry.
    pub fn devices_dir(&self) -> PathBuf {
        self.dir.join(DEVICES_DIR)
    }

    /// `DIR/device.key`: this device's own private key, if it has one.
    pub fn device_key_path(&self) -> PathBuf {
        self.dir.join(DEVICE_KEY)
    }

    /// `DIR/recipients.list`: the newest recipient list this home signed, as handed out.
    pub fn list_path(&self) -> PathBuf {
        self.dir.join(RECIPIENTS_LIST)
    }

    /// `DIR/pinned-cameras`: the cameras whose footage `decrypt` accepts.
    pub fn cameras_path(&self) -> PathBuf {
        self.dir.join(PINNED_CAMERAS)
    }

    /// Whether an account key or public key is present.
    pub fn has_account(&self) -> Result<bool, HomeError> {
        refuse_non_directory(&self.dir)?;
        Ok(exists(&self.key_path())? || exists(&self.public_path())?)
    }

    /// Loads the account key, and checks it against `account.pub` when that is present.
    pub fn account(&self) -> Result<AccountSecret, HomeError> {
        let path = self.key_path();
        let text = read_secret_text(&path)?;
        let account = AccountSecret::from_text(&text).map_err(|source| HomeError::BadFile {
            path: path.clone(),
            source,
        })?;
        if exists(&self.public_path())? && self.account_public()? != account.public() {
            return Err(HomeError::KeyMismatch {
                key: path,
                public: self.public_path(),
            });
        }
        Ok(account)
    }

    /// Loads `account.pub`.
    pub fn account_public(&self) -> Result<AccountPublic, HomeError> {
        let path = self.public_path();
        let text = read_text(&path, TEXT_LIMIT)?;
        AccountPublic::from_text(&text).map_err(|source| HomeError::BadFile { path, source })
    }

    /// Writes a new account: its backup, `account.pub`, then `account.key` (0600).
    ///
    /// Refuses if an account key or public key exists. An `account.backup` that is already
    /// there is kept if it is byte-identical (restoring from the home's own backup) and
    /// refused otherwise: a backup is never overwritten.
    pub fn write_account(&self, account: &AccountSecret, backup: &[u8]) -> Result<(), HomeError> {
        if self.has_account()? {
            return Err(HomeError::AccountExists {
                dir: self.dir.clone(),
            });
        }
        let backup_path = self.backup_path();
        if exists(&backup_path)? {
            if read(&backup_path, BACKUP_FILE_LIMIT)? != backup {
                return Err(HomeError::FileExists { path: backup_path });
            }
        } else {
            write_atomic(&backup_path, backup, PRIVATE, Replace::Never)?;
        }
        write_atomic(
            &self.public_path(),
            account.public().to_text().as_bytes(),
            PUBLIC,
            Replace::Never,
        )?;
        write_atomic(
            &self.key_path(),
            account.to_text().as_bytes(),
            PRIVATE,
            Replace::Never,
        )
    }

    /// `DIR/account.kem`: which of the account's two recipient keys its lists name.
    pub fn kem_path(&self) -> PathBuf {
        self.dir.join(ACCOUNT_KEM)
    }

    /// The kind of the account's own recipient key: what `account.kem` says, X25519 when it
    /// is missing (homes made before X-Wing keep sealing as they did).
    pub fn account_kem(&self) -> Result<KemKind, HomeError> {
        let path = self.kem_path();
        if !exists(&path)? {
            return Ok(KemKind::X25519);
        }
        let text = read_text(&path, TEXT_LIMIT)?;
        decode_account_kem(&text).ok_or_else(|| HomeError::BadState {
            path,
            reason: format!(
                "expected `{ACCOUNT_KEM_HEADER}` and a `kem x-wing` or `kem x25519-hkdf-sha256` line"
            ),
        })
    }

    /// Records the kind of the account's recipient key (`viewer init` and `viewer restore`
    /// write it before the account, so that the first list already names that key).
    pub fn write_account_kem(&self, kem: KemKind) -> Result<(), HomeError> {
        write_atomic(
            &self.kem_path(),
            format!("{ACCOUNT_KEM_HEADER}\nkem {}\n", kem.name()).as_bytes(),
            PUBLIC,
            Replace::Allow,
        )
    }

    /// The recipients a new list should name: the account's own key of the kind
    /// [`ViewerHome::account_kem`] says (label `account`), then each `devices/NAME.pub` in
    /// name order (label `NAME`).
    pub fn recipients(&self) -> Result<Vec<Recipient>, HomeError> {
        let kem = self.account_kem()?;
        let public_key = match kem {
            KemKind::X25519 => self.account_public()?.x25519.to_vec(),
            KemKind::XWing => self
                .account()?
                .recipient_secret(KemKind::XWing)
                .public_key(),
        };
        let mut out = vec![Recipient {
            kem: kem.id(),
            public_key,
            label: ACCOUNT_LABEL.to_owned(),
        }];
        out.extend(self.recipients_of_devices()?);
        Ok(out)
    }

    /// The recipient entries of the devices alone (label `NAME`), in name order.
    pub fn recipients_of_devices(&self) -> Result<Vec<Recipient>, HomeError> {
        Ok(self
            .devices()?
            .into_iter()
            .map(|(label, device)| device.recipient(label))
            .collect())
    }

    /// The device keys in `devices/`, sorted by name. Files not ending in `.pub` and hidden
    /// files are ignored; a `.pub` file that does not parse is an error, so that a device is
    /// never left out of a list silently.
    pub fn devices(&self) -> Result<Vec<(String, DevicePublic)>, HomeError> {
        let dir = self.devices_dir();
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(io_error("read directory", &dir, source)),
        };
        let mut devices = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| io_error("read directory", &dir, source))?;
            let path = entry.path();
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let Some(label) = name.strip_suffix(DEVICE_SUFFIX) else {
                continue;
            };
            if name.starts_with('.') {
                continue;
            }
            if label.is_empty() || label.len() > 64 || label.chars().any(char::is_control) {
                return Err(HomeError::BadState {
                    path,
                    reason: "a device name must be 1 to 64 bytes without control characters".into(),
                });
            }
            let text = read_text(&path, TEXT_LIMIT)?;
            let device = DevicePublic::from_text(&text)
                .map_err(|source| HomeError::BadFile { path, source })?;
            devices.push((label.to_owned(), device));
        }
        devices.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(devices)
    }

    /// This device's own key, `None` if the home has none.
    pub fn device_key(&self) -> Result<Option<RecipientSecret>, HomeError> {
        let path = self.device_key_path();
        if !exists(&path)? {
            return Ok(None);
        }
        let text = read_secret_text(&path)?;
        RecipientSecret::from_text(&text)
            .map(Some)
            .map_err(|source| HomeError::BadFile { path, source })
    }

    /// Writes `device.key` (0600) and lists its public half as `devices/NAME.pub`. Refuses
    /// if the home has a device key already, or if `name` is taken.
    pub fn write_device_key(&self, name: &str, device: &RecipientSecret) -> Result<(), HomeError> {
        let path = self.device_key_path();
        if exists(&path)? {
            return Err(HomeError::FileExists { path });
        }
        self.add_device(name, &device.device_public())?;
        write_atomic(&path, device.to_text().as_bytes(), PRIVATE, Replace::Never)
    }

    /// Lists `public` as the device `name` (`devices/NAME.pub`), so that the next list this
    /// home signs names it. Refuses a name in use and a key listed under another name.
    pub fn add_device(&self, name: &str, public: &DevicePublic) -> Result<(), HomeError> {
        check_device_name(name).map_err(|reason| HomeError::InvalidDeviceName {
            name: name.to_owned(),
            reason,
        })?;
        if let Some((other, _)) = self.devices()?.iter().find(|(_, d)| d == public) {
            return Err(HomeError::BadState {
                path: self.device_path(other),
                reason: "this device key is listed already".into(),
            });
        }
        ensure_dir(&self.devices_dir())?;
        write_atomic(
            &self.device_path(name),
            public.to_text().as_bytes(),
            PUBLIC,
            Replace::Never,
        )
    }

    /// Removes the device `name` from the home, so that the next list this home signs leaves
    /// it out. Returns its key.
    pub fn remove_device(&self, name: &str) -> Result<DevicePublic, HomeError> {
        let Some((_, public)) = self.devices()?.into_iter().find(|(n, _)| n == name) else {
            return Err(HomeError::UnknownDevice {
                name: name.to_owned(),
                dir: self.dir.clone(),
            });
        };
        let added = self.devices_dir().join(format!("{name}{ADDED_SUFFIX}"));
        let path = self.device_path(name);
        fs::remove_file(&path).map_err(|source| io_error("remove", &path, source))?;
        match fs::remove_file(&added) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => return Err(io_error("remove", &added, source)),
        }
        fsutil::sync_dir(&self.devices_dir())
            .map_err(|source| io_error("sync", &self.devices_dir(), source))?;
        Ok(public)
    }

    /// The version of the first list this home signed that named the device `name`, `None`
    /// if no signed list named it yet.
    pub fn device_added_in(&self, name: &str) -> Result<Option<u64>, HomeError> {
        let path = self.devices_dir().join(format!("{name}{ADDED_SUFFIX}"));
        if !exists(&path)? {
            return Ok(None);
        }
        let text = read_text(&path, TEXT_LIMIT)?;
        text.trim_end_matches('\n')
            .parse()
            .map(Some)
            .map_err(|_| HomeError::BadState {
                path,
                reason: "expected a decimal version number".into(),
            })
    }

    /// Keeps `signed` (the bytes of `list`) as the newest list of this home, for `viewer
    /// publish`, and notes for each device named in it for the first time that it was
    /// added in this version. Call it after [`ViewerHome::record_recipients_version`].
    pub fn store_signed_list(&self, list: &RecipientList, signed: &[u8]) -> Result<(), HomeError> {
        for (name, _) in self.devices()? {
            if list.recipients.iter().any(|r| r.label == name)
                && self.device_added_in(&name)?.is_none()
            {
                write_atomic(
                    &self.devices_dir().join(format!("{name}{ADDED_SUFFIX}")),
                    format!("{}\n", list.version).as_bytes(),
                    PUBLIC,
                    Replace::Allow,
                )?;
            }
        }
        write_atomic(&self.list_path(), signed, PUBLIC, Replace::Allow)
    }

    /// The newest list this home signed ([`ViewerHome::store_signed_list`]), re-verified,
    /// with its bytes; `None` if it signed none since it kept them.
    pub fn signed_list(&self) -> Result<Option<(RecipientList, Vec<u8>)>, HomeError> {
        let path = self.list_path();
        if !exists(&path)? {
            return Ok(None);
        }
        let bytes = read(&path, LIST_FILE_LIMIT)?;
        let list = RecipientList::parse_signed(&bytes)
            .map_err(|source| HomeError::BadFile { path, source })?;
        Ok(Some((list, bytes)))
    }

    fn device_path(&self, name: &str) -> PathBuf {
        self.devices_dir().join(format!("{name}{DEVICE_SUFFIX}"))
    }

    /// The version the next recipient list gets: one more than the last one recorded.
    pub fn next_recipients_version(&self) -> Result<u64, HomeError> {
        let path = self.dir.join(RECIPIENTS_VERSION);
        if !exists(&path)? {
            return Ok(1);
        }
        let text = read_text(&path, TEXT_LIMIT)?;
        let last: u64 = text
            .strip_suffix('\n')
            .unwrap_or(&text)
            .parse()
            .map_err(|_| HomeError::BadState {
                path: path.clone(),
                reason: "expected a decimal version number".into(),
            })?;
        last.checked_add(1).ok_or(HomeError::BadState {
            path,
            reason: "the recipient list version cannot grow any further".into(),
        })
    }

    /// Records that a list with `version` was signed. Call it before handing the list out,
    /// so that a crash can skip a version but never reuse one.
    pub fn record_recipients_version(&self, version: u64) -> Result<(), HomeError> {
        write_atomic(
            &self.dir.join(RECIPIENTS_VERSION),
            format!("{version}\n").as_bytes(),
            PUBLIC,
            Replace::Allow,
        )
    }

    /// The pinned cameras, in the order they were pinned (none if `pinned-cameras` is
    /// missing). A damaged file is an error, never an empty list.
    pub fn trusted_cameras(&self) -> Result<Vec<PinnedCamera>, HomeError> {
        let path = self.cameras_path();
        if !exists(&path)? {
            return Ok(Vec::new());
        }
        let text = read_text(&path, CAMERAS_FILE_LIMIT)?;
        decode_cameras(&text).map_err(|reason| HomeError::BadState { path, reason })
    }

    /// Pins `public`, so that `decrypt` accepts its footage without `--camera`.
    ///
    /// Pinning a pinned camera again changes nothing but its name, and only when `name` is
    /// given; a new camera is named `name` or, by default, its camera id. Names are 1 to 64
    /// bytes without control characters or surrounding white space, unique among the pinned
    /// cameras, and a name of 16 hex digits can only be the camera's own id (so that a name
    /// never reads as another camera's id).
    pub fn pin_camera(
        &self,
        public: &CameraPublic,
        name: Option<&str>,
    ) -> Result<PinOutcome, HomeError> {
        public.verifying_key()?;
        if let Some(name) = name {
            check_camera_name(name, public).map_err(|reason| HomeError::InvalidCameraName {
                name: name.to_owned(),
                reason,
            })?;
        }
        let mut cameras = self.trusted_cameras()?;
        let existing = cameras.iter().position(|c| c.public == *public);
        let new_name = match (name, existing) {
            (Some(name), _) => name.to_owned(),
            (None, Some(i)) => cameras[i].name.clone(),
            (None, None) => public.id(),
        };
        if let Some(other) = cameras
            .iter()
            .find(|c| c.public != *public && c.name == new_name)
        {
            return Err(HomeError::CameraNameTaken {
                name: new_name,
                id: other.public.id(),
            });
        }
        let outcome = match existing {
            Some(i) if cameras[i].name == new_name => return Ok(PinOutcome::AlreadyPinned),
            Some(i) => PinOutcome::Renamed {
                from: std::mem::replace(&mut cameras[i].name, new_name),
            },
            None => {
                let id = public.id();
                if cameras.iter().any(|c| c.public.id() == id) {
                    return Err(HomeError::CameraIdTaken { id });
                }
                if cameras.len() >= MAX_PINNED_CAMERAS {
                    return Err(HomeError::BadState {
                        path: self.cameras_path(),
                        reason: format!(
                            "{MAX_PINNED_CAMERAS} cameras are pinned already; remove one first"
                        ),
                    });
                }
                cameras.push(PinnedCamera {
                    name: new_name,
                    public: *public,
                });
                PinOutcome::Added
            }
        };
        self.write_cameras(&cameras)?;
        Ok(outcome)
    }

    /// Unpins one camera and returns it. Asking for a camera that is not pinned is an error.
    pub fn unpin_camera(&self, which: CameraRef<'_>) -> Result<PinnedCamera, HomeError> {
        let mut cameras = self.trusted_cameras()?;
        let found = cameras.iter().position(|c| match which {
            CameraRef::IdOrName(s) => c.public.id() == s || c.name == s,
            CameraRef::Key(public) => c.public == *public,
        });
        let Some(i) = found else {
            return Err(HomeError::UnknownCamera {
                which: match which {
                    CameraRef::IdOrName(s) => s.to_owned(),
                    CameraRef::Key(public) => public.id(),
                },
                dir: self.dir.clone(),
            });
        };
        let removed = cameras.remove(i);
        self.write_cameras(&cameras)?;
        Ok(removed)
    }

    fn write_cameras(&self, cameras: &[PinnedCamera]) -> Result<(), HomeError> {
        write_atomic(
            &self.cameras_path(),
            encode_cameras(cameras).as_bytes(),
            PUBLIC,
            Replace::Allow,
        )
    }
}

/// A camera the viewer trusts: `decrypt` accepts its footage without `--camera`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinnedCamera {
    /// A name for people (by default the camera id).
    pub name: String,
    /// The camera's public key.
    pub public: CameraPublic,
}

/// What [`ViewerHome::pin_camera`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinOutcome {
    /// The camera is newly pinned.
    Added,
    /// The camera was pinned already under that name: nothing changed.
    AlreadyPinned,
    /// The camera was pinned already; its name changed.
    Renamed {
        /// The name it had.
        from: String,
    },
}

/// Which pinned camera [`ViewerHome::unpin_camera`] removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CameraRef<'a> {
    /// The camera with this camera id or name.
    IdOrName(&'a str),
    /// The camera with this key.
    Key(&'a CameraPublic),
}

/// A camera home directory: the camera identity key, the pinned account, and the installed
/// recipient list.
#[derive(Debug, Clone)]
pub struct CameraHome {
    dir: PathBuf,
}

/// What [`CameraHome::trust`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustOutcome {
    /// The list now installed.
    pub list: RecipientList,
    /// The version it replaced, if there was one.
    pub previous_version: Option<u64>,
    /// Whether this list pinned its account (the first list the camera accepted).
    pub newly_pinned: bool,
    /// Whether this exact signed list was already installed (nothing was written), so that
    /// re-running the same `camera trust` is harmless.
    pub unchanged: bool,
}

impl CameraHome {
    /// A handle on `dir` that touches nothing on disk. [`CameraHome::create`] makes the
    /// directory.
    pub fn at(dir: impl Into<PathBuf>) -> Self {
        CameraHome { dir: dir.into() }
    }

    /// Creates the directory if needed (mode 0700) and returns the home, whether or not it
    /// holds a camera identity yet.
    pub fn create(dir: impl Into<PathBuf>) -> Result<Self, HomeError> {
        let dir = dir.into();
        ensure_dir(&dir)?;
        Ok(CameraHome { dir })
    }

    /// Opens a home that holds a camera identity.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, HomeError> {
        let home = CameraHome { dir: dir.into() };
        if !home.has_camera()? {
            if home.dir.join(ACCOUNT_KEY).exists() {
                return Err(HomeError::WrongKind {
                    dir: home.dir,
                    wanted: "camera",
                    found: "viewer",
                });
            }
            return Err(HomeError::NoCamera { dir: home.dir });
        }
        Ok(home)
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `DIR/camera.key`.
    pub fn key_path(&self) -> PathBuf {
        self.dir.join(CAMERA_KEY)
    }

    /// `DIR/camera.pub`.
    pub fn public_path(&self) -> PathBuf {
        self.dir.join(CAMERA_PUB)
    }

    /// `DIR/recipients.list`: the installed signed list, byte for byte as received.
    pub fn list_path(&self) -> PathBuf {
        self.dir.join(RECIPIENTS_LIST)
    }

    /// `DIR/pinned-account`.
    pub fn pin_path(&self) -> PathBuf {
        self.dir.join(PINNED_ACCOUNT)
    }

    /// Whether a camera key or public key is present.
    pub fn has_camera(&self) -> Result<bool, HomeError> {
        refuse_non_directory(&self.dir)?;
        Ok(exists(&self.key_path())? || exists(&self.public_path())?)
    }

    /// Loads the camera key, and checks it against `camera.pub` when that is present.
    pub fn camera(&self) -> Result<CameraSecret, HomeError> {
        let path = self.key_path();
        let text = read_secret_text(&path)?;
        let camera = CameraSecret::from_text(&text).map_err(|source| HomeError::BadFile {
            path: path.clone(),
            source,
        })?;
        if exists(&self.public_path())? && self.camera_public()? != camera.public() {
            return Err(HomeError::KeyMismatch {
                key: path,
                public: self.public_path(),
            });
        }
        Ok(camera)
    }

    /// Loads `camera.pub`.
    pub fn camera_public(&self) -> Result<CameraPublic, HomeError> {
        let path = self.public_path();
        let text = read_text(&path, TEXT_LIMIT)?;
        CameraPublic::from_text(&text).map_err(|source| HomeError::BadFile { path, source })
    }

    /// Writes a new identity: `camera.pub`, then `camera.key` (0600). Refuses if either
    /// exists.
    pub fn write_camera(&self, camera: &CameraSecret) -> Result<(), HomeError> {
        if self.has_camera()? {
            return Err(HomeError::CameraExists {
                dir: self.dir.clone(),
            });
        }
        write_atomic(
            &self.public_path(),
            camera.public().to_text().as_bytes(),
            PUBLIC,
            Replace::Never,
        )?;
        write_atomic(
            &self.key_path(),
            camera.to_text().as_bytes(),
            PRIVATE,
            Replace::Never,
        )
    }

    /// The pinned account, if a list was ever installed.
    pub fn pinned_account(&self) -> Result<Option<AccountPin>, HomeError> {
        let path = self.pin_path();
        if !exists(&path)? {
            return Ok(None);
        }
        let text = read_text(&path, TEXT_LIMIT)?;
        AccountPin::from_text(&text)
            .map(Some)
            .map_err(|source| HomeError::BadFile { path, source })
    }

    /// The installed recipient list, re-verified: its signature, and that it is signed by
    /// the pinned account. `None` before the first `trust`.
    pub fn trusted_recipients(&self) -> Result<Option<RecipientList>, HomeError> {
        let path = self.list_path();
        if !exists(&path)? {
            return Ok(None);
        }
        let bytes = read(&path, LIST_FILE_LIMIT)?;
        let list = RecipientList::parse_signed(&bytes).map_err(|source| HomeError::BadFile {
            path: path.clone(),
            source,
        })?;
        match self.pinned_account()? {
            Some(pin) if pin.ed25519 == list.account => Ok(Some(list)),
            Some(pin) => Err(HomeError::BadState {
                path,
                reason: format!(
                    "signed by account {} but the camera pinned account {}",
                    list.account_id(),
                    pin.id()
                ),
            }),
            None => Err(HomeError::BadState {
                path,
                reason: format!(
                    "installed, but {} is missing; remove both to enroll again",
                    self.pin_path().display()
                ),
            }),
        }
    }

    /// Installs a signed recipient list.
    ///
    /// The first list pins its account. Every later list must be signed by the pinned
    /// account and carry a higher version than the installed one, so that whoever relays
    /// lists (a cloud service) can neither add a recipient nor roll back a revocation.
    /// Every recipient must use a KEM this camera implements (X25519 today).
    pub fn trust(&self, signed: &[u8]) -> Result<TrustOutcome, HomeError> {
        let list = RecipientList::parse_signed(signed).map_err(HomeError::InvalidList)?;
        let pin = self.pinned_account()?;
        if let Some(pin) = pin
            && pin.ed25519 != list.account
        {
            return Err(HomeError::DifferentAccount {
                pinned: pin.id(),
                got: list.account_id(),
            });
        }
        let installed = self.trusted_recipients()?;
        if let Some(installed) = &installed
            && list.version == installed.version
            && read(&self.list_path(), LIST_FILE_LIMIT)? == signed
        {
            return Ok(TrustOutcome {
                previous_version: Some(installed.version),
                list,
                newly_pinned: false,
                unchanged: true,
            });
        }
        if let Some(installed) = &installed
            && list.version <= installed.version
        {
            return Err(HomeError::NotNewer {
                version: list.version,
                installed: installed.version,
            });
        }
        // Installing a list the camera cannot seal to would stop it recording; refuse it
        // here, where the person installing it sees why.
        if let Some((i, r)) = list
            .recipients
            .iter()
            .enumerate()
            .find(|(_, r)| KemKind::from_id(r.kem).is_none())
        {
            return Err(HomeError::UnsupportedKem {
                position: i + 1,
                label: r.label.clone(),
                kem: r.kem,
            });
        }
        let newly_pinned = pin.is_none();
        if newly_pinned {
            let pin = AccountPin {
                ed25519: list.account,
            };
            write_atomic(
                &self.pin_path(),
                pin.to_text().as_bytes(),
                PUBLIC,
                Replace::Never,
            )?;
        }
        write_atomic(&self.list_path(), signed, PUBLIC, Replace::Allow)?;
        Ok(TrustOutcome {
            list,
            previous_version: installed.map(|l| l.version),
            newly_pinned,
            unchanged: false,
        })
    }
}

/// The camera footage is checked against, and why it is trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CameraChoice {
    /// Named for this run (`decrypt --camera`), whether or not it is pinned.
    Explicit(CameraPublic),
    /// The camera the footage names, found among the viewer's pinned cameras.
    Pinned(PinnedCamera),
}

impl CameraChoice {
    /// The chosen camera's key.
    pub fn public(&self) -> &CameraPublic {
        match self {
            CameraChoice::Explicit(public) => public,
            CameraChoice::Pinned(pinned) => &pinned.public,
        }
    }
}

/// Decides which camera footage is checked against (pure: it reads nothing).
///
/// A camera named for this run (`explicit`) wins, pinned or not. Otherwise every camera key
/// that the footage's headers name (`footage`, the `camera_key` of each header) must be one of
/// the `pinned` cameras, and the first one is chosen. The headers are not authenticated
/// yet: the caller must then check every segment's signature against the chosen key, so that
/// a header naming a pinned camera it was not signed by fails as tampered. Without this
/// check, anyone who knows a viewer's public key could seal footage to it with a camera of
/// their own, and the viewer would accept it. `home` only names the viewer home in errors.
pub fn choose_camera(
    home: &Path,
    explicit: Option<CameraPublic>,
    pinned: &[PinnedCamera],
    footage: &[[u8; 32]],
) -> Result<CameraChoice, CameraChoiceError> {
    if let Some(public) = explicit {
        return Ok(CameraChoice::Explicit(public));
    }
    let mut chosen = None;
    for key in footage {
        match pinned.iter().find(|c| c.public.ed25519 == *key) {
            Some(camera) => {
                chosen.get_or_insert(camera);
            }
            None => {
                let camera = CameraPublic { ed25519: *key };
                let home = home.to_owned();
                return Err(if pinned.is_empty() {
                    CameraChoiceError::NonePinned { camera, home }
                } else {
                    CameraChoiceError::NotPinned { camera, home }
                });
            }
        }
    }
    chosen
        .map(|camera| CameraChoice::Pinned(camera.clone()))
        .ok_or(CameraChoiceError::NoFootage)
}

/// A device name: it becomes a file name and a recipient label.
fn check_device_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > 64 {
        return Err("a device name is 1 to 64 bytes");
    }
    if name == ACCOUNT_LABEL {
        return Err("\"account\" is the account key's label");
    }
    if name.starts_with('.')
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err("use letters, digits, '-', '_' and '.', not starting with '.'");
    }
    Ok(())
}

/// The largest backup file camseal reads (a version 1 backup is 94 bytes; the rest is room
/// for later versions).
pub const BACKUP_FILE_LIMIT: u64 = 64 * 1024;

/// The largest recipient list file camseal reads (the format's limits allow about 1 MiB).
pub const LIST_FILE_LIMIT: u64 = 2 * 1024 * 1024;

/// Reads a whole file of at most `limit` bytes.
pub fn read_file(path: &Path, limit: u64) -> Result<Vec<u8>, HomeError> {
    read(path, limit)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Replace {
    Allow,
    Never,
}

fn io_error(action: &'static str, path: &Path, source: io::Error) -> HomeError {
    HomeError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

fn exists(path: &Path) -> Result<bool, HomeError> {
    path.try_exists()
        .map_err(|source| io_error("look up", path, source))
}

/// Fails if `dir` exists but is not a directory (a missing one is fine).
fn refuse_non_directory(dir: &Path) -> Result<(), HomeError> {
    match fs::metadata(dir) {
        Ok(m) if !m.is_dir() => Err(HomeError::NotADirectory {
            path: dir.to_owned(),
        }),
        _ => Ok(()),
    }
}

/// `mkdir -p` with mode 0700 for the directories it creates.
fn ensure_dir(dir: &Path) -> Result<(), HomeError> {
    match fs::metadata(dir) {
        Ok(m) if m.is_dir() => return Ok(()),
        Ok(_) => {
            return Err(HomeError::NotADirectory {
                path: dir.to_owned(),
            });
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(source) => return Err(io_error("look up", dir, source)),
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .map_err(|source| io_error("create directory", dir, source))
}

fn read(path: &Path, limit: u64) -> Result<Vec<u8>, HomeError> {
    let mut out = Vec::new();
    read_into(path, limit, &mut out)?;
    Ok(out)
}

fn read_text(path: &Path, limit: u64) -> Result<String, HomeError> {
    String::from_utf8(read(path, limit)?).map_err(|_| HomeError::BadFile {
        path: path.to_owned(),
        source: KeyError::BadFormat("not UTF-8 text".into()),
    })
}

/// Reads a key file into memory that is wiped on drop. The buffer is allocated once at its
/// final size so that no reallocation leaves a copy of the key behind.
fn read_secret_text(path: &Path) -> Result<Zeroizing<String>, HomeError> {
    let mut bytes = Zeroizing::new(Vec::with_capacity(TEXT_LIMIT as usize + 1));
    read_into(path, TEXT_LIMIT, &mut bytes)?;
    if std::str::from_utf8(&bytes).is_err() {
        return Err(HomeError::BadFile {
            path: path.to_owned(),
            source: KeyError::BadFormat("not UTF-8 text".into()),
        });
    }
    let bytes = core::mem::take(&mut *bytes);
    // Invariant: checked to be UTF-8 just above, so this cannot fail and drop the bytes
    // un-wiped inside an error.
    Ok(Zeroizing::new(
        String::from_utf8(bytes).unwrap_or_else(|_| String::new()),
    ))
}

fn read_into(path: &Path, limit: u64, out: &mut Vec<u8>) -> Result<(), HomeError> {
    let file = File::open(path).map_err(|source| io_error("read", path, source))?;
    file.take(limit + 1)
        .read_to_end(out)
        .map_err(|source| io_error("read", path, source))?;
    if out.len() as u64 > limit {
        return Err(HomeError::TooLarge {
            path: path.to_owned(),
            limit,
        });
    }
    Ok(())
}

/// Writes `contents` to `path` atomically and durably, created with `mode` (`fsutil`).
fn write_atomic(
    path: &Path,
    contents: &[u8],
    mode: u32,
    replace: Replace,
) -> Result<(), HomeError> {
    let result = match replace {
        Replace::Allow => fsutil::write_atomic(path, contents, mode),
        Replace::Never => fsutil::write_new(path, contents, mode),
    };
    result.map_err(|e| {
        if e.kind() == io::ErrorKind::AlreadyExists {
            HomeError::FileExists {
                path: path.to_owned(),
            }
        } else {
            io_error("write", path, e)
        }
    })
}

/// Why `name` cannot name `public`, if it cannot.
fn check_camera_name(name: &str, public: &CameraPublic) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > 64 {
        return Err("a camera name must be 1 to 64 bytes long");
    }
    if name.chars().any(char::is_control) {
        return Err("a camera name cannot contain control characters");
    }
    if name.trim() != name {
        return Err("a camera name cannot start or end with white space");
    }
    if name.len() == 16 && name.bytes().all(|b| b.is_ascii_hexdigit()) && name != public.id() {
        return Err("16 hex digits read as a camera id; only the camera's own id can be its name");
    }
    Ok(())
}

/// The text of a `pinned-cameras` file.
fn encode_cameras(cameras: &[PinnedCamera]) -> String {
    let mut out = String::with_capacity(PINNED_CAMERAS_HEADER.len() + 1 + cameras.len() * 140);
    out.push_str(PINNED_CAMERAS_HEADER);
    out.push('\n');
    for c in cameras {
        out.push_str(CAMERA_LINE_PREFIX);
        out.push_str(&hex::encode(c.public.ed25519));
        out.push(' ');
        out.push_str(&c.name);
        out.push('\n');
    }
    out
}

/// Parses a `pinned-cameras` file strictly; the error says what is wrong, and where.
fn decode_cameras(text: &str) -> Result<Vec<PinnedCamera>, String> {
    let body = text.strip_suffix('\n').unwrap_or(text);
    let mut lines = body.split('\n');
    if lines.next() != Some(PINNED_CAMERAS_HEADER) {
        return Err(format!(
            "expected a `{PINNED_CAMERAS_HEADER}` file, found something else"
        ));
    }
    let mut cameras: Vec<PinnedCamera> = Vec::new();
    for (i, line) in lines.enumerate() {
        let at = i + 2;
        if cameras.len() >= MAX_PINNED_CAMERAS {
            return Err(format!("more than {MAX_PINNED_CAMERAS} cameras"));
        }
        let (key_hex, name) = line
            .strip_prefix(CAMERA_LINE_PREFIX)
            .and_then(|rest| rest.split_once(' '))
            .ok_or_else(|| format!("line {at}: expected `camera <64 hex digits> <name>`"))?;
        let mut ed25519 = [0u8; 32];
        if key_hex.len() != 64 || hex::decode_to_slice(key_hex, &mut ed25519).is_err() {
            return Err(format!("line {at}: the key must be 64 hex digits"));
        }
        let public = CameraPublic { ed25519 };
        public
            .verifying_key()
            .map_err(|e| format!("line {at}: {e}"))?;
        check_camera_name(name, &public).map_err(|reason| format!("line {at}: {reason}"))?;
        if let Some(other) = cameras
            .iter()
            .find(|c| c.public == public || c.public.id() == public.id() || c.name == name)
        {
            return Err(format!(
                "line {at}: camera {} or its name {name:?} is listed twice (see camera {})",
                public.id(),
                other.public.id()
            ));
        }
        cameras.push(PinnedCamera {
            name: name.to_owned(),
            public,
        });
    }
    Ok(cameras)
}

const ACCOUNT_KEY: &str = "account.key";
const ACCOUNT_PUB: &str = "account.pub";
const ACCOUNT_BACKUP: &str = "account.backup";
const ACCOUNT_KEM: &str = "account.kem";
const ACCOUNT_KEM_HEADER: &str = "camseal-account-kem-v1";
const ACCOUNT_LABEL: &str = "account";
const DEVICES_DIR: &str = "devices";
const DEVICE_SUFFIX: &str = ".pub";
const DEVICE_KEY: &str = "device.key";
const ADDED_SUFFIX: &str = ".added";
const RECIPIENTS_VERSION: &str = "recipients.version";
const CAMERA_KEY: &str = "camera.key";
const CAMERA_PUB: &str = "camera.pub";
const PINNED_ACCOUNT: &str = "pinned-account";
const PINNED_CAMERAS: &str = "pinned-cameras";
const PINNED_CAMERAS_HEADER: &str = "camseal-pinned-cameras-v1";
const CAMERA_LINE_PREFIX: &str = "camera ";
/// More cameras than any home has; it keeps `pinned-cameras` far below its read limit.
const MAX_PINNED_CAMERAS: usize = 1024;
/// 1024 lines of at most 137 bytes, with room to spare.
const CAMERAS_FILE_LIMIT: u64 = 256 * 1024;
const RECIPIENTS_LIST: &str = "recipients.list";
/// Key and state files are a few hundred bytes.
const TEXT_LIMIT: u64 = 4096;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KEM_X25519_HKDF_SHA256;

    #[cfg(unix)]
    use std::os::unix::fs::PermissionsExt;

    fn account(n: u8) -> AccountSecret {
        AccountSecret::from_seed([n; 32])
    }

    fn signed(acc: &AccountSecret, version: u64, keys: &[u8]) -> Vec<u8> {
        RecipientList {
            version,
            account: acc.public().ed25519,
            recipients: keys
                .iter()
                .map(|&k| Recipient {
                    kem: KEM_X25519_HKDF_SHA256,
                    public_key: vec![k; 32],
                    label: format!("k{k}"),
                })
                .collect(),
        }
        .sign(acc)
        .unwrap()
    }

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn viewer_open_without_account_says_what_to_run() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("nothing");
        let e = ViewerHome::open(&dir).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "no viewer account in {0}: run `camseal viewer init --home {0}`",
                dir.display()
            )
        );
        ViewerHome::create(&dir).unwrap();
        assert!(matches!(
            ViewerHome::open(&dir),
            Err(HomeError::NoViewerAccount { .. })
        ));
    }

    #[test]
    fn viewer_account_round_trip_with_private_modes() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("a/b/viewer");
        let home = ViewerHome::create(&dir).unwrap();
        home.write_account(&account(1), b"backup bytes").unwrap();
        let home = ViewerHome::open(&dir).unwrap();
        assert_eq!(home.account().unwrap().public(), account(1).public());
        assert_eq!(home.account_public().unwrap(), account(1).public());
        assert_eq!(fs::read(home.backup_path()).unwrap(), b"backup bytes");
        assert_eq!(
            names(&dir),
            ["account.backup", "account.key", "account.pub"],
            "temporary files left behind"
        );
        #[cfg(unix)]
        {
            assert_eq!(mode(&dir), 0o700);
            assert_eq!(mode(&home.key_path()), 0o600);
            assert_eq!(mode(&home.backup_path()), 0o600);
            assert_eq!(mode(&home.public_path()) & 0o600, 0o600);
        }
    }

    #[test]
    fn existing_account_is_never_overwritten() {
        let t = tempfile::tempdir().unwrap();
        let home = ViewerHome::create(t.path()).unwrap();
        home.write_account(&account(1), b"one").unwrap();
        let e = home.write_account(&account(2), b"two").unwrap_err();
        assert!(matches!(e, HomeError::AccountExists { .. }), "{e}");
        assert_eq!(home.account().unwrap().public(), account(1).public());
        assert_eq!(fs::read(home.backup_path()).unwrap(), b"one");

        // A key file alone also counts as an account.
        fs::remove_file(home.public_path()).unwrap();
        assert!(matches!(
            home.write_account(&account(2), b"one"),
            Err(HomeError::AccountExists { .. })
        ));
    }

    #[test]
    fn a_different_backup_in_the_way_is_kept() {
        let t = tempfile::tempdir().unwrap();
        let home = ViewerHome::create(t.path()).unwrap();
        fs::write(home.backup_path(), b"someone else's").unwrap();
        let e = home.write_account(&account(1), b"mine").unwrap_err();
        assert!(matches!(e, HomeError::FileExists { .. }), "{e}");
        assert_eq!(fs::read(home.backup_path()).unwrap(), b"someone else's");
        assert!(!home.has_account().unwrap());
        // The same backup (restoring from the home's own copy) is fine.
        fs::write(home.backup_path(), b"mine").unwrap();
        home.write_account(&account(1), b"mine").unwrap();
    }

    #[test]
    fn mismatched_or_damaged_key_files_are_reported() {
        let t = tempfile::tempdir().unwrap();
        let home = ViewerHome::create(t.path()).unwrap();
        home.write_account(&account(1), b"b").unwrap();
        fs::write(home.public_path(), account(2).public().to_text()).unwrap();
        let e = home.account().unwrap_err();
        assert!(matches!(e, HomeError::KeyMismatch { .. }), "{e}");

        fs::write(home.key_path(), "camseal-account-key-v1\nseed 00\n").unwrap();
        let e = home.account().unwrap_err();
        assert!(e.to_string().contains("account.key"), "{e}");
        assert!(matches!(e, HomeError::BadFile { .. }));

        fs::write(home.key_path(), [0xffu8, 0xfe]).unwrap();
        assert!(matches!(home.account(), Err(HomeError::BadFile { .. })));
        fs::write(home.key_path(), vec![b'a'; 5000]).unwrap();
        assert!(matches!(home.account(), Err(HomeError::TooLarge { .. })));
    }

    #[test]
    fn io_errors_name_the_path_and_keep_the_cause() {
        let t = tempfile::tempdir().unwrap();
        let home = ViewerHome::create(t.path()).unwrap();
        let e = home.account().unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("cannot read {}", home.key_path().display())
        );
        let cause = std::error::Error::source(&e).unwrap();
        assert!(cause.downcast_ref::<io::Error>().is_some());
    }

    #[test]
    fn create_refuses_a_file() {
        let t = tempfile::tempdir().unwrap();
        let file = t.path().join("f");
        fs::write(&file, b"x").unwrap();
        assert!(matches!(
            ViewerHome::create(&file),
            Err(HomeError::NotADirectory { .. })
        ));
        assert!(matches!(
            CameraHome::create(&file),
            Err(HomeError::NotADirectory { .. })
        ));
    }

    #[test]
    fn recipients_version_counts_up() {
        let t = tempfile::tempdir().unwrap();
        let home = ViewerHome::create(t.path()).unwrap();
        assert_eq!(home.next_recipients_version().unwrap(), 1);
        home.record_recipients_version(1).unwrap();
        assert_eq!(home.next_recipients_version().unwrap(), 2);
        home.record_recipients_version(41).unwrap();
        assert_eq!(home.next_recipients_version().unwrap(), 42);
        fs::write(t.path().join("recipients.version"), "x\n").unwrap();
        assert!(matches!(
            home.next_recipients_version(),
            Err(HomeError::BadState { .. })
        ));
        home.record_recipients_version(u64::MAX).unwrap();
        assert!(matches!(
            home.next_recipients_version(),
            Err(HomeError::BadState { .. })
        ));
    }

    #[test]
    fn devices_become_recipients_in_name_order() {
        let t = tempfile::tempdir().unwrap();
        let home = ViewerHome::create(t.path()).unwrap();
        home.write_account(&account(1), b"b").unwrap();
        let devices = home.devices_dir();
        fs::create_dir(&devices).unwrap();
        let dev = |n: u8| {
            DevicePublic {
                kem: KemKind::X25519,
                public_key: vec![n; 32],
            }
            .to_text()
        };
        fs::write(devices.join("tablet.pub"), dev(3)).unwrap();
        fs::write(devices.join("phone.pub"), dev(2)).unwrap();
        fs::write(devices.join("notes.txt"), "ignored").unwrap();
        fs::write(devices.join(".hidden.pub"), "ignored").unwrap();
        let r = home.recipients().unwrap();
        let labels: Vec<&str> = r.iter().map(|r| r.label.as_str()).collect();
        assert_eq!(labels, ["account", "phone", "tablet"]);
        assert_eq!(r[0].public_key, account(1).public().x25519);
        assert_eq!(r[1].public_key, [2; 32]);

        fs::write(devices.join("broken.pub"), "camseal-device-v1\n").unwrap();
        let e = home.recipients().unwrap_err();
        assert!(e.to_string().contains("broken.pub"), "{e}");
    }

    #[test]
    fn the_account_key_kind_decides_the_account_recipient() {
        let t = tempfile::tempdir().unwrap();
        let home = ViewerHome::create(t.path()).unwrap();
        home.write_account(&account(1), b"b").unwrap();
        // A home from before X-Wing has no account.kem: it keeps naming its X25519 key.
        assert_eq!(home.account_kem().unwrap(), KemKind::X25519);
        let r = home.recipients().unwrap();
        assert_eq!(
            (r[0].kem, &r[0].public_key[..]),
            (0x0020, &account(1).public().x25519[..])
        );

        home.write_account_kem(KemKind::XWing).unwrap();
        assert_eq!(home.account_kem().unwrap(), KemKind::XWing);
        let r = home.recipients().unwrap();
        assert_eq!(r[0].kem, 0x647a);
        assert_eq!(
            r[0].public_key,
            account(1).recipient_secret(KemKind::XWing).public_key()
        );
        assert_eq!(r[0].public_key.len(), 1216);

        // Hybrid and classic devices sit on one list, in name order, each with its own kind.
        let devices = home.devices_dir();
        fs::create_dir(&devices).unwrap();
        let hybrid = crate::keys::RecipientSecret::new(KemKind::XWing, [4; 32]);
        fs::write(
            devices.join("a-hybrid.pub"),
            hybrid.device_public().to_text(),
        )
        .unwrap();
        let classic = crate::keys::RecipientSecret::new(KemKind::X25519, [5; 32]);
        fs::write(
            devices.join("b-classic.pub"),
            classic.device_public().to_text(),
        )
        .unwrap();
        let r = home.recipients().unwrap();
        let kems: Vec<u16> = r.iter().map(|r| r.kem).collect();
        assert_eq!(kems, [0x647a, 0x647a, 0x0020]);
        assert_eq!(r[1].public_key, hybrid.public_key());
        let list = RecipientList {
            version: 1,
            account: account(1).public().ed25519,
            recipients: r,
        };
        let signed = list.sign(&account(1)).unwrap();
        assert_eq!(RecipientList::parse_signed(&signed).unwrap(), list);

        for bad in ["", "camseal-account-kem-v1\nkem x448\n", "kem x-wing\n"] {
            fs::write(home.kem_path(), bad).unwrap();
            assert!(
                matches!(home.account_kem(), Err(HomeError::BadState { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn camera_identity_round_trip() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("cam");
        assert_eq!(
            CameraHome::open(&dir).unwrap_err().to_string(),
            format!(
                "no camera identity in {0}: run `camseal camera init --home {0}`",
                dir.display()
            )
        );
        let home = CameraHome::create(&dir).unwrap();
        let cam = CameraSecret::from_seed([5; 32]);
        home.write_camera(&cam).unwrap();
        let home = CameraHome::open(&dir).unwrap();
        assert_eq!(home.camera().unwrap().public(), cam.public());
        assert_eq!(home.camera_public().unwrap(), cam.public());
        assert!(matches!(
            home.write_camera(&CameraSecret::from_seed([6; 32])),
            Err(HomeError::CameraExists { .. })
        ));
        assert_eq!(home.camera().unwrap().public(), cam.public());
        #[cfg(unix)]
        assert_eq!(mode(&home.key_path()), 0o600);
        assert_eq!(names(&dir), ["camera.key", "camera.pub"]);
    }

    #[test]
    fn trust_pins_then_requires_same_account_and_newer_versions() {
        let t = tempfile::tempdir().unwrap();
        let home = CameraHome::create(t.path()).unwrap();
        home.write_camera(&CameraSecret::from_seed([5; 32]))
            .unwrap();
        let (a, b) = (account(1), account(2));
        assert_eq!(home.trusted_recipients().unwrap(), None);
        assert_eq!(home.pinned_account().unwrap(), None);

        let first = home.trust(&signed(&a, 3, &[1])).unwrap();
        assert!(first.newly_pinned);
        assert_eq!(first.previous_version, None);
        assert_eq!(
            home.pinned_account().unwrap().unwrap().ed25519,
            a.public().ed25519
        );

        let e = home.trust(&signed(&b, 9, &[1])).unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with(&format!(
                "recipient list is signed by a different account (pinned: {}, got: {}); ",
                a.public().id(),
                b.public().id()
            )),
            "{text}"
        );
        let again = home.trust(&signed(&a, 3, &[1])).unwrap();
        assert!(
            again.unchanged && !again.newly_pinned,
            "the same list twice"
        );
        for old in [3, 2, 0] {
            let e = home.trust(&signed(&a, old, &[1, 2])).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!("recipient list version {old} is not newer than the installed version 3")
            );
        }
        let next = home.trust(&signed(&a, 4, &[1, 2])).unwrap();
        assert!(!next.newly_pinned);
        assert_eq!(next.previous_version, Some(3));
        assert_eq!(next.list.recipients.len(), 2);
        assert_eq!(home.trusted_recipients().unwrap(), Some(next.list));

        let mut garbled = signed(&a, 5, &[1]);
        garbled[20] ^= 1;
        let e = home.trust(&garbled).unwrap_err();
        assert!(matches!(e, HomeError::InvalidList(_)), "{e}");
        assert!(matches!(
            home.trust(b"hello"),
            Err(HomeError::InvalidList(_))
        ));
        assert_eq!(home.trusted_recipients().unwrap().unwrap().version, 4);

        let future = RecipientList {
            version: 5,
            account: a.public().ed25519,
            recipients: vec![
                Recipient {
                    kem: KEM_X25519_HKDF_SHA256,
                    public_key: vec![1; 32],
                    label: "account".into(),
                },
                Recipient {
                    kem: 0x9999,
                    public_key: vec![2; 1568],
                    label: "future phone".into(),
                },
            ],
        }
        .sign(&a)
        .unwrap();
        let e = home.trust(&future).unwrap_err();
        assert_eq!(
            e.to_string(),
            "recipient 2 (\"future phone\") uses KEM 0x9999, which this camera cannot seal to"
        );
        assert_eq!(home.trusted_recipients().unwrap().unwrap().version, 4);

        // An X-Wing recipient next to an X25519 one is installed: the camera seals to both.
        let hybrid = RecipientList {
            version: 5,
            account: a.public().ed25519,
            recipients: vec![
                Recipient {
                    kem: KEM_X25519_HKDF_SHA256,
                    public_key: vec![1; 32],
                    label: "account".into(),
                },
                crate::keys::RecipientSecret::new(KemKind::XWing, [2; 32])
                    .device_public()
                    .recipient("pq phone"),
            ],
        }
        .sign(&a)
        .unwrap();
        home.trust(&hybrid).unwrap();
        assert_eq!(home.trusted_recipients().unwrap().unwrap().version, 5);
    }

    #[test]
    fn tampered_camera_state_is_detected() {
        let t = tempfile::tempdir().unwrap();
        let home = CameraHome::create(t.path()).unwrap();
        home.trust(&signed(&account(1), 1, &[1])).unwrap();
        // Someone swaps the pin: the installed list no longer matches it.
        fs::write(
            home.pin_path(),
            AccountPin {
                ed25519: account(2).public().ed25519,
            }
            .to_text(),
        )
        .unwrap();
        assert!(matches!(
            home.trusted_recipients(),
            Err(HomeError::BadState { .. })
        ));
        // A pin removed while a list is installed is reported, not silently re-pinned.
        fs::remove_file(home.pin_path()).unwrap();
        assert!(matches!(
            home.trust(&signed(&account(2), 7, &[1])),
            Err(HomeError::BadState { .. })
        ));
        // A damaged installed list is reported with its path.
        fs::write(home.list_path(), b"CSRL").unwrap();
        fs::write(
            home.pin_path(),
            AccountPin {
                ed25519: account(1).public().ed25519,
            }
            .to_text(),
        )
        .unwrap();
        let e = home.trusted_recipients().unwrap_err();
        assert!(e.to_string().contains("recipients.list"), "{e}");
    }

    fn cam(n: u8) -> CameraPublic {
        CameraSecret::from_seed([n; 32]).public()
    }

    fn pinned(name: &str, n: u8) -> PinnedCamera {
        PinnedCamera {
            name: name.into(),
            public: cam(n),
        }
    }

    #[test]
    fn pinned_cameras_round_trip_in_pin_order() {
        let t = tempfile::tempdir().unwrap();
        let home = ViewerHome::create(t.path()).unwrap();
        assert_eq!(home.trusted_cameras().unwrap(), []);
        assert_eq!(home.pin_camera(&cam(2), None).unwrap(), PinOutcome::Added);
        assert_eq!(
            home.pin_camera(&cam(1), Some("front door")).unwrap(),
            PinOutcome::Added
        );
        let expected = [pinned(&cam(2).id(), 2), pinned("front door", 1)];
        assert_eq!(home.trusted_cameras().unwrap(), expected);
        assert_eq!(
            fs::read_to_string(home.cameras_path()).unwrap(),
            format!(
                "camseal-pinned-cameras-v1\ncamera {} {}\ncamera {} front door\n",
                hex::encode(cam(2).ed25519),
                cam(2).id(),
                hex::encode(cam(1).ed25519)
            )
        );
        assert_eq!(names(t.path()), ["pinned-cameras"], "temporary files left");

        // Again: nothing changes, unless a new name is given.
        assert_eq!(
            home.pin_camera(&cam(1), None).unwrap(),
            PinOutcome::AlreadyPinned
        );
        assert_eq!(
            home.pin_camera(&cam(1), Some("front door")).unwrap(),
            PinOutcome::AlreadyPinned
        );
        assert_eq!(home.trusted_cameras().unwrap(), expected);
        assert_eq!(
            home.pin_camera(&cam(1), Some("porch")).unwrap(),
            PinOutcome::Renamed {
                from: "front door".into()
            }
        );
        assert_eq!(
            home.trusted_cameras().unwrap(),
            [pinned(&cam(2).id(), 2), pinned("porch", 1)]
        );
    }

    #[test]
    fn camera_names_are_checked_and_unique() {
        let t = tempfile::tempdir().unwrap();
        let home = ViewerHome::create(t.path()).unwrap();
        home.pin_camera(&cam(1), Some("porch")).unwrap();
        let e = home.pin_camera(&cam(2), Some("porch")).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "the name \"porch\" is already used by pinned camera {}: choose another name",
                cam(1).id()
            )
        );
        let long = "x".repeat(65);
        let bad = [
            "",
            long.as_str(),
            "tab\there",
            "line\nbreak",
            " padded",
            "padded ",
            "0123456789abcdef",
        ];
        for name in bad {
            let e = home.pin_camera(&cam(2), Some(name)).unwrap_err();
            assert!(
                matches!(e, HomeError::InvalidCameraName { .. }),
                "{name:?}: {e}"
            );
        }
        // A camera's own id is a fine name (it is the default), and so is any other text.
        home.pin_camera(&cam(2), Some(&cam(2).id())).unwrap();
        home.pin_camera(&cam(3), Some("garage (north) \u{1f4f7}"))
            .unwrap();
        assert_eq!(home.trusted_cameras().unwrap().len(), 3);
        // Another camera's id is not: it would read as that camera.
        let e = home.pin_camera(&cam(4), Some(&cam(1).id())).unwrap_err();
        assert!(matches!(e, HomeError::InvalidCameraName { .. }), "{e}");
        // A key that is not a valid point is refused before anything is written.
        let weak = CameraPublic { ed25519: [0; 32] };
        assert!(matches!(
            home.pin_camera(&weak, None),
            Err(HomeError::Key(_))
        ));
        assert_eq!(home.trusted_cameras().unwrap().len(), 3);
    }

    #[test]
    fn unpin_by_id_name_or_key() {
        let t = tempfile::tempdir().unwrap();
        let home = ViewerHome::create(t.path()).unwrap();
        for n in 1..=3 {
            home.pin_camera(&cam(n), Some(&format!("cam {n}"))).unwrap();
        }
        assert_eq!(
            home.unpin_camera(CameraRef::IdOrName(&cam(2).id()))
                .unwrap(),
            pinned("cam 2", 2)
        );
        assert_eq!(
            home.unpin_camera(CameraRef::IdOrName("cam 3")).unwrap(),
            pinned("cam 3", 3)
        );
        assert_eq!(home.trusted_cameras().unwrap(), [pinned("cam 1", 1)]);
        for which in [
            CameraRef::IdOrName("cam 3"),
            CameraRef::IdOrName(""),
            CameraRef::Key(&cam(2)),
        ] {
            let e = home.unpin_camera(which).unwrap_err();
            assert!(matches!(e, HomeError::UnknownCamera { .. }), "{e}");
            assert!(
                e.to_string().contains(&t.path().display().to_string()),
                "{e}"
            );
        }
        assert_eq!(
            home.unpin_camera(CameraRef::Key(&cam(1))).unwrap(),
            pinned("cam 1", 1)
        );
        assert_eq!(home.trusted_cameras().unwrap(), []);
        assert_eq!(
            fs::read_to_string(home.cameras_path()).unwrap(),
            "camseal-pinned-cameras-v1\n"
        );
    }

    #[test]
    fn damaged_pinned_cameras_are_reported() {
        let t = tempfile::tempdir().unwrap();
        let home = ViewerHome::create(t.path()).unwrap();
        let line = |n: u8, name: &str| format!("camera {} {name}\n", hex::encode(cam(n).ed25519));
        let header = "camseal-pinned-cameras-v1\n";
        let good = format!("{header}{}{}", line(1, "a"), line(2, "b b"));
        fs::write(home.cameras_path(), &good).unwrap();
        assert_eq!(
            home.trusted_cameras().unwrap(),
            [pinned("a", 1), pinned("b b", 2)]
        );
        fs::write(home.cameras_path(), good.trim_end()).unwrap();
        assert_eq!(home.trusted_cameras().unwrap().len(), 2);
        let weak = format!("camera {} w\n", "00".repeat(32));
        let bad = [
            String::new(),
            "camseal-camera-v1\n".to_owned(),
            format!("{header}\n"),
            format!("{header}{}", line(1, "")),
            format!("{header}{}", line(1, " a")),
            format!("{header}camera {} a\n", "zz".repeat(32)),
            format!("{header}camera {} a\n", "ab".repeat(31)),
            format!("{header}{weak}"),
            format!("{header}{}{}", line(1, "a"), line(1, "b")),
            format!("{header}{}{}", line(1, "a"), line(2, "a")),
            format!("{header}{}", line(1, "a").replace('\n', "\r\n")),
            format!("{header}{}", line(1, &cam(2).id())),
        ];
        for text in bad {
            fs::write(home.cameras_path(), &text).unwrap();
            let e = home.trusted_cameras().unwrap_err();
            assert!(matches!(e, HomeError::BadState { .. }), "{text:?}: {e}");
            assert!(e.to_string().contains("pinned-cameras"), "{e}");
            // Nothing is pinned on top of a damaged file.
            assert!(home.pin_camera(&cam(3), None).is_err());
            assert_eq!(fs::read_to_string(home.cameras_path()).unwrap(), text);
        }
        fs::write(home.cameras_path(), vec![b'a'; 300 * 1024]).unwrap();
        assert!(matches!(
            home.trusted_cameras(),
            Err(HomeError::TooLarge { .. })
        ));
    }

    #[test]
    fn footage_must_come_from_a_pinned_camera_unless_one_is_named() {
        let home = Path::new("/v");
        let pins = [pinned("porch", 1), pinned("garage", 2)];
        let key = |n: u8| cam(n).ed25519;

        // The footage's camera is pinned: chosen, with its name.
        assert_eq!(
            choose_camera(home, None, &pins, &[key(2)]),
            Ok(CameraChoice::Pinned(pinned("garage", 2)))
        );
        assert_eq!(
            choose_camera(home, None, &pins, &[key(1), key(2)])
                .unwrap()
                .public(),
            &cam(1)
        );
        // Not pinned: refused, whether other cameras are pinned or none are.
        let e = choose_camera(home, None, &pins, &[key(3)]).unwrap_err();
        assert_eq!(
            e,
            CameraChoiceError::NotPinned {
                camera: cam(3),
                home: home.into()
            }
        );
        assert_eq!(
            e.to_string(),
            format!(
                "camera {} is not pinned in /v: refusing its footage",
                cam(3).id()
            )
        );
        assert_eq!(e.camera(), Some(&cam(3)));
        assert_eq!(e.home(), Some(home));
        let e = choose_camera(home, None, &pins, &[key(1), key(3)]).unwrap_err();
        assert_eq!(e.camera(), Some(&cam(3)));
        let e = choose_camera(home, None, &[], &[key(1)]).unwrap_err();
        assert!(matches!(e, CameraChoiceError::NonePinned { .. }), "{e}");
        assert_eq!(
            e.to_string(),
            format!(
                "no cameras are pinned in /v: refusing footage from camera {}",
                cam(1).id()
            )
        );
        assert_eq!(
            choose_camera(home, None, &pins, &[]),
            Err(CameraChoiceError::NoFootage)
        );

        // A camera named for the run wins, pinned or not, whatever the footage names.
        for footage in [&[][..], &[key(3)], &[key(1)]] {
            for p in [&pins[..], &[]] {
                assert_eq!(
                    choose_camera(home, Some(cam(4)), p, footage),
                    Ok(CameraChoice::Explicit(cam(4)))
                );
            }
        }
    }
}
