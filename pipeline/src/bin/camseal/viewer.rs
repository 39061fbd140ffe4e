//! `camseal viewer`: the account keys, the recovery backup, and signed recipient lists.

use std::fs::File;
use std::io::{self, BufRead, IsTerminal, Read, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use camseal::home::{self, CameraRef, HomeError, PinOutcome, ViewerHome};
use camseal::keys::{
    AccountSecret, BackupParams, CameraPublic, KemKind, Passphrase, RecipientList, open_backup,
    seal_backup,
};
use zeroize::Zeroizing;

use crate::cli::{
    ViewerCamerasAddArgs, ViewerCamerasListArgs, ViewerCamerasRemoveArgs, ViewerInitArgs,
    ViewerRecipientsArgs, ViewerRestoreArgs,
};
use crate::describe::{describe_camera, describe_recipient, write_files};

/// `camseal viewer init`: new account, backup, and the passphrase printed once.
pub fn init(args: ViewerInitArgs) -> Result<ExitCode> {
    if args.device_only {
        return init_device_only(&args);
    }
    // Checked before the slow Argon2id step (write_account checks again), so that a home
    // that cannot be used fails at once.
    let home = ViewerHome::create(&args.home)?;
    refuse_existing_account(&home)?;
    let account = AccountSecret::generate()?;
    let passphrase = Passphrase::generate()?;
    let backup = seal_backup(&account, &passphrase)?;
    home.write_account_kem(device_kem(args.classic))?;
    home.write_account(&account, &backup)?;

    let mut out = io::stdout().lock();
    writeln!(
        out,
        "Created viewer account {} in {} (recipient key: {})",
        account.public().id(),
        home.dir().display(),
        kem_description(device_kem(args.classic))
    )?;
    write_files(
        &mut out,
        &[
            (
                home.key_path(),
                "private key (mode 0600): never copy it off this device",
            ),
            (home.public_path(), "public key: cameras and senders use it"),
            (
                home.backup_path(),
                "recovery backup, encrypted under the passphrase below",
            ),
        ],
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "Recovery passphrase (shown only this once: write it down and keep it offline):"
    )?;
    writeln!(out)?;
    writeln!(out, "    {passphrase}")?;
    writeln!(out)?;
    writeln!(
        out,
        "The passphrase and account.backup together restore the account on another device \
         (`camseal viewer restore`). Anyone holding both can watch your footage; without the \
         passphrase, losing this device means losing access."
    )?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// `camseal viewer restore`: the account from its backup and passphrase.
pub fn restore(args: ViewerRestoreArgs) -> Result<ExitCode> {
    let backup = home::read_file(&args.backup, home::BACKUP_FILE_LIMIT)?;
    // A wrong file is reported before the passphrase is asked for.
    BackupParams::of(&backup).with_context(|| format!("invalid {}", args.backup.display()))?;
    // Nothing is created on disk until the backup has opened.
    refuse_existing_account(&ViewerHome::at(&args.home))?;
    let typed = match &args.passphrase_file {
        Some(path) => read_passphrase_file(path)?,
        None => read_passphrase_stdin()?,
    };
    let passphrase = Passphrase::parse(&typed)?;
    let account = open_backup(&backup, &passphrase)
        .with_context(|| format!("cannot open {}", args.backup.display()))?;
    let home = ViewerHome::create(&args.home)?;
    home.write_account_kem(device_kem(args.classic))?;
    home.write_account(&account, &backup)?;
    // This device gets a key of its own, on a new list version: it can be revoked alone
    // later (as long as it does not keep the account key).
    let device = crate::devices::create_device_key(
        &home,
        args.device_name.as_deref(),
        device_kem(args.classic),
    )?;
    let (list, _) = crate::devices::sign_and_keep(&home)?;

    let mut out = io::stdout().lock();
    writeln!(
        out,
        "Restored viewer account {} into {} (recipient key: {})",
        account.public().id(),
        home.dir().display(),
        kem_description(device_kem(args.classic))
    )?;
    write_files(
        &mut out,
        &[
            (home.key_path(), "private key (mode 0600)"),
            (home.public_path(), "public key"),
            (home.backup_path(), "recovery backup"),
            (home.device_key_path(), "this device's own key (mode 0600)"),
            (home.list_path(), "the new signed recipient list"),
        ],
    )?;
    writeln!(
        out,
        "This device is {device:?}, on recipient list version {}. Publish the list so cameras seal to it: \
         `camseal viewer publish --home {} --sink URL`",
        list.version,
        home.dir().display()
    )?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// `camseal viewer init --device-only`: a device key and no account.
fn init_device_only(args: &ViewerInitArgs) -> Result<ExitCode> {
    let home = ViewerHome::create(&args.home)?;
    refuse_existing_account(&home)?;
    let kem = device_kem(args.classic);
    let name = crate::devices::create_device_key(&home, args.name.as_deref(), kem)?;
    let public = home.devices_dir().join(format!("{name}.pub"));
    let mut out = io::stdout().lock();
    writeln!(
        out,
        "Created device {name:?} in {} (no account key; device key: {})",
        home.dir().display(),
        kem_description(kem)
    )?;
    write_files(
        &mut out,
        &[
            (
                home.device_key_path(),
                "private key (mode 0600): never copy it off this device",
            ),
            (public.clone(), "public key: give it to the account holder"),
        ],
    )?;
    writeln!(
        out,
        "On a device holding the account: `camseal viewer enroll --home DIR --name {name} {}`",
        public.display()
    )?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// The next recipient list of this home (account and devices, one version above the last
/// one it signed), signed. The version is not recorded here: callers record it just before
/// the list leaves the process.
pub fn next_signed_list(home: &ViewerHome) -> Result<(RecipientList, Vec<u8>)> {
    let account = home.account()?;
    let list = RecipientList {
        version: home.next_recipients_version()?,
        account: account.public().ed25519,
        recipients: home.recipients()?,
    };
    let signed = list
        .sign(&account)
        .context("cannot sign the recipient list")?;
    Ok((list, signed))
}

/// `camseal viewer recipients`: a list naming the account and its devices, signed, one
/// version above the last one this home signed.
pub fn recipients(args: ViewerRecipientsArgs) -> Result<ExitCode> {
    let home = ViewerHome::open(&args.home)?;
    let (list, signed) = next_signed_list(&home)?;
    let version = list.version;
    // A missing output directory is caught before a version number is used up.
    if let Some(parent) = args.out.parent()
        && !parent.as_os_str().is_empty()
        && !parent.is_dir()
    {
        anyhow::bail!(
            "cannot write {}: {} is not a directory",
            args.out.display(),
            parent.display()
        );
    }
    // Recorded before the list leaves this process, so a version is never handed out twice.
    home.record_recipients_version(version)?;
    home.store_signed_list(&list, &signed)?;
    camseal::fsutil::write_atomic(&args.out, &signed, camseal::fsutil::PUBLIC)
        .with_context(|| format!("cannot write {}", args.out.display()))?;

    println!(
        "Wrote recipient list version {version} ({} recipient{}, account {}) to {}",
        list.recipients.len(),
        if list.recipients.len() == 1 { "" } else { "s" },
        list.account_id(),
        args.out.display()
    );
    for r in &list.recipients {
        println!("  {}", describe_recipient(r));
    }
    Ok(ExitCode::SUCCESS)
}

/// `camseal viewer cameras add`: pin a camera, so that `decrypt` accepts its footage.
pub fn cameras_add(args: ViewerCamerasAddArgs) -> Result<ExitCode> {
    let home = ViewerHome::open(&args.home)?;
    let public = CameraPublic {
        ed25519: crate::verify::read_camera_pub(&args.camera)?,
    };
    let outcome = home.pin_camera(&public, args.name.as_deref())?;
    let camera = home
        .trusted_cameras()?
        .into_iter()
        .find(|c| c.public == public)
        .context("the camera just pinned is missing from the viewer home")?;
    let dir = home.dir().display();
    match outcome {
        PinOutcome::Added => println!(
            "Pinned camera {} in {dir}: `camseal decrypt` accepts its footage",
            describe_camera(&camera)
        ),
        PinOutcome::AlreadyPinned => println!(
            "Camera {} is already pinned in {dir}",
            describe_camera(&camera)
        ),
        PinOutcome::Renamed { from } => println!(
            "Camera {} is already pinned in {dir}; renamed from {from:?} to {:?}",
            camera.public.id(),
            camera.name
        ),
    }
    Ok(ExitCode::SUCCESS)
}

/// `camseal viewer cameras list`: one line per pinned camera, or JSON.
pub fn cameras_list(args: ViewerCamerasListArgs) -> Result<ExitCode> {
    let home = ViewerHome::open(&args.home)?;
    let cameras = home.trusted_cameras()?;
    if args.json {
        let list: Vec<serde_json::Value> = cameras
            .iter()
            .map(|c| {
                serde_json::json!({
                    "camera_id": c.public.id(),
                    "name": c.name,
                    "public": hex::encode(c.public.ed25519),
                })
            })
            .collect();
        println!("{:#}", serde_json::Value::Array(list));
        return Ok(ExitCode::SUCCESS);
    }
    if cameras.is_empty() {
        eprintln!(
            "no cameras are pinned in {dir}; `camseal viewer cameras add --home {dir} camera.pub` pins one",
            dir = home.dir().display()
        );
    }
    let mut out = io::stdout().lock();
    for c in &cameras {
        writeln!(out, "{}  {}", c.public.id(), c.name)?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// `camseal viewer cameras remove`: unpin a camera by id, name or `camera.pub` file.
pub fn cameras_remove(args: ViewerCamerasRemoveArgs) -> Result<ExitCode> {
    let home = ViewerHome::open(&args.home)?;
    let which = args.camera.as_str();
    // An id or name wins over a file of the same name in the current directory.
    let named = home
        .trusted_cameras()?
        .iter()
        .any(|c| c.public.id() == which || c.name == which);
    let removed = if !named && Path::new(which).is_file() {
        let public = CameraPublic {
            ed25519: crate::verify::read_camera_pub(Path::new(which))?,
        };
        home.unpin_camera(CameraRef::Key(&public))?
    } else {
        home.unpin_camera(CameraRef::IdOrName(which))?
    };
    println!(
        "Removed camera {} from {}: `camseal decrypt` refuses its footage unless given --camera",
        describe_camera(&removed),
        home.dir().display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The kind of key a new device gets: hybrid X-Wing unless `--classic`.
fn device_kem(classic: bool) -> KemKind {
    if classic {
        KemKind::X25519
    } else {
        KemKind::XWing
    }
}

fn kem_description(kem: KemKind) -> &'static str {
    match kem {
        KemKind::XWing => "hybrid post-quantum X-Wing, X25519 + ML-KEM-768",
        KemKind::X25519 => "classic X25519",
    }
}

fn refuse_existing_account(home: &ViewerHome) -> Result<()> {
    if home.has_account()? {
        return Err(HomeError::AccountExists {
            dir: home.dir().to_owned(),
        }
        .into());
    }
    Ok(())
}

/// The whole file (words may be on one line or several), in memory that is wiped on drop.
fn read_passphrase_file(path: &Path) -> Result<Zeroizing<String>> {
    let file = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut bytes = Zeroizing::new(Vec::with_capacity(PASSPHRASE_LIMIT + 1));
    file.take(PASSPHRASE_LIMIT as u64 + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if bytes.len() > PASSPHRASE_LIMIT {
        anyhow::bail!(
            "{} is larger than {PASSPHRASE_LIMIT} bytes: not a passphrase file",
            path.display()
        );
    }
    into_text(bytes).with_context(|| format!("cannot read {}", path.display()))
}

/// One line from standard input, with a prompt when it is a terminal.
fn read_passphrase_stdin() -> Result<Zeroizing<String>> {
    let stdin = io::stdin();
    let mut bytes = Zeroizing::new(Vec::with_capacity(PASSPHRASE_LIMIT + 1));
    let mut read = || {
        stdin
            .lock()
            .take(PASSPHRASE_LIMIT as u64 + 1)
            .read_until(b'\n', &mut bytes)
    };
    if stdin.is_terminal() {
        // Echo goes off before the prompt shows, so nothing typed after it is echoed.
        crate::term::without_echo(|| {
            eprint!("Recovery passphrase (12 words, not shown as you type): ");
            io::stderr().flush()?;
            read()
        })
    } else {
        read()
    }
    .context("cannot read the recovery passphrase from standard input")?;
    into_text(bytes).context("cannot read the recovery passphrase from standard input")
}

fn into_text(mut bytes: Zeroizing<Vec<u8>>) -> Result<Zeroizing<String>> {
    if std::str::from_utf8(&bytes).is_err() {
        anyhow::bail!("not UTF-8 text");
    }
    let bytes = std::mem::take(&mut *bytes);
    // Invariant: checked to be UTF-8 just above.
    Ok(Zeroizing::new(
        String::from_utf8(bytes).unwrap_or_else(|_| String::new()),
    ))
}

/// 12 words of at most 8 letters and their spaces fit many times over.
const PASSPHRASE_LIMIT: usize = 4096;
