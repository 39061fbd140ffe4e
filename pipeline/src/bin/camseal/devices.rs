//! `camseal viewer devices`, `enroll`, `revoke` and `publish`: the account's devices, and
//! the control channel that carries its newest recipient list to the cameras.

use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use camseal::control;
use camseal::home::{self, ViewerHome};
use camseal::keys::{DevicePublic, KemKind, RecipientList, RecipientSecret, account_id, device_id};
use camseal::upload::{UploadError, open_sink, redact_url};

use crate::cli::{ViewerDevicesArgs, ViewerEnrollArgs, ViewerPublishArgs, ViewerRevokeArgs};
use crate::describe::describe_recipient;

/// `camseal viewer devices`: one line per device (or JSON).
pub fn devices(args: ViewerDevicesArgs) -> Result<ExitCode> {
    let home = ViewerHome::open(&args.home)?;
    let own = home.device_key()?.map(|d| d.device_public());
    let devices = home.devices()?;
    let mut rows = Vec::new();
    for r in home.recipients_of_devices()? {
        let this = own
            .as_ref()
            .is_some_and(|o| devices.iter().any(|(n, d)| *n == r.label && d == o));
        rows.push(Row {
            added_in: home.device_added_in(&r.label)?,
            key_id: device_id(r.kem, &r.public_key),
            kem: kem_name(r.kem),
            name: r.label,
            this,
        });
    }
    if args.json {
        let list: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "name": r.name,
                    "key_id": r.key_id,
                    "kem": r.kem,
                    "added_in_version": r.added_in,
                    "this_device": r.this,
                })
            })
            .collect();
        println!("{:#}", serde_json::Value::Array(list));
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        eprintln!(
            "no devices in {}: `viewer restore` on a new device adds one, `viewer enroll` adds another device's key",
            home.dir().display()
        );
    }
    let mut out = io::stdout().lock();
    for r in &rows {
        writeln!(
            out,
            "{:<20} {}  {:<8} {}{}",
            r.name,
            r.key_id,
            r.kem,
            match r.added_in {
                Some(v) => format!("added in list version {v}"),
                None => "not on a signed list yet".to_owned(),
            },
            if r.this { "  (this device)" } else { "" }
        )?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// `camseal viewer enroll`: add another device's key and sign a list naming it.
pub fn enroll(args: ViewerEnrollArgs) -> Result<ExitCode> {
    let home = ViewerHome::open(&args.home)?;
    home.account()?;
    let text = String::from_utf8(home::read_file(&args.device, 4096)?)
        .with_context(|| format!("{} is not a device public key file", args.device.display()))?;
    let public = DevicePublic::from_text(&text)
        .with_context(|| format!("{} is not a device public key file", args.device.display()))?;
    home.add_device(&args.name, &public)?;
    let (list, _) = sign_and_keep(&home)?;
    println!(
        "Enrolled device {:?}: signed recipient list version {}",
        args.name, list.version
    );
    print_list_and_next_step(&home, &list);
    Ok(ExitCode::SUCCESS)
}

/// `camseal viewer revoke`: remove a device, sign a list without it.
pub fn revoke(args: ViewerRevokeArgs) -> Result<ExitCode> {
    let home = ViewerHome::open(&args.home)?;
    // The account key is checked first, so a home that cannot sign removes nothing.
    home.account()?;
    home.remove_device(&args.device)?;
    let (list, _) = sign_and_keep(&home)?;
    println!(
        "Revoked device {:?}: signed recipient list version {} without it",
        args.device, list.version
    );
    println!(
        "  Segments a camera seals after installing this list do not open on that device; \
         footage it could already open stays open to it."
    );
    print_list_and_next_step(&home, &list);
    Ok(ExitCode::SUCCESS)
}

/// `camseal viewer publish`: the newest list, as a control object per pinned camera.
pub fn publish(args: ViewerPublishArgs) -> Result<ExitCode> {
    let home = ViewerHome::open(&args.home)?;
    let account = home.account()?;
    let Some((mut list, mut signed)) = home.signed_list()? else {
        bail!(
            "{} holds no signed recipient list yet: `viewer pair`, `viewer recipients`, `viewer enroll` or `viewer revoke` signs one",
            home.dir().display()
        );
    };
    let cameras = home.trusted_cameras()?;
    let chosen: Vec<_> = if args.camera.is_empty() {
        cameras
    } else {
        let mut chosen = Vec::new();
        for which in &args.camera {
            let Some(c) = cameras
                .iter()
                .find(|c| c.public.id() == *which || c.name == *which)
            else {
                bail!(
                    "no camera with id or name {which:?} is pinned in {}",
                    home.dir().display()
                );
            };
            chosen.push(c.clone());
        }
        chosen
    };
    if chosen.is_empty() {
        bail!(
            "no cameras are pinned in {}: pair one first (`viewer pair`)",
            home.dir().display()
        );
    }
    let net = crate::upload::net_config(args.connect_timeout, args.io_timeout)?;
    let sink = open_sink(&args.sink, &net)
        .with_context(|| format!("--sink {}", redact_url(&args.sink)))?;
    for camera in &chosen {
        let id = camera.public.id();
        // Replacing a newer list of this account would only be refused by the camera; say so
        // here instead (another home of the account may have signed it).
        match sink.get_control(&id) {
            Ok(Some(existing)) => {
                if let Ok(o) = control::open(&existing)
                    && o.list.account == list.account
                    && o.camera_id == id
                    && o.list.version >= list.version
                    && o.signed_list != signed
                {
                    if !args.supersede {
                        bail!(
                            "{} already holds recipient list version {} of this account for camera {id}, not older than this home's version {}: refusing to replace it (--supersede signs this home's list again above it)",
                            sink.name(),
                            o.list.version,
                            list.version
                        );
                    }
                    (list, signed) = sign_above(&home, o.list.version)?;
                    println!(
                        "Signed this home's list again as version {} (the sink held version {}):",
                        list.version, o.list.version
                    );
                    for r in &list.recipients {
                        println!("    {}", describe_recipient(r));
                    }
                }
            }
            Ok(None) => {}
            Err(UploadError::Unsupported(what)) => bail!("{}: {what}", sink.name()),
            Err(e) => {
                return Err(e).with_context(|| format!("cannot read {}", sink.name()));
            }
        }
        let object = control::seal(&id, &signed, &account)?;
        sink.put_control(&id, &object)
            .with_context(|| format!("cannot upload to {}", sink.name()))?;
        println!(
            "Published recipient list version {} (account {}) for camera {} to {} as {}",
            list.version,
            account_id(&list.account),
            crate::describe::describe_camera(camera),
            sink.name(),
            control::object_key("", &id)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Creates this device's key of kind `kem` in `home` (named `name`, by default `device-`
/// and its key id) and returns its name.
pub fn create_device_key(home: &ViewerHome, name: Option<&str>, kem: KemKind) -> Result<String> {
    let device = RecipientSecret::generate(kem)?;
    let name = match name {
        Some(n) => n.to_owned(),
        None => format!("device-{}", &device_id(kem.id(), &device.public_key())[..8]),
    };
    home.write_device_key(&name, &device)?;
    Ok(name)
}

/// Signs the next list of `home`, records its version, and keeps it for `viewer publish`.
pub fn sign_and_keep(home: &ViewerHome) -> Result<(RecipientList, Vec<u8>)> {
    let (list, signed) = crate::viewer::next_signed_list(home)?;
    home.record_recipients_version(list.version)?;
    home.store_signed_list(&list, &signed)?;
    Ok((list, signed))
}

/// Signs the next list of `home` with a version above `floor` (and above its own), records
/// it and keeps it.
fn sign_above(home: &ViewerHome, floor: u64) -> Result<(RecipientList, Vec<u8>)> {
    let next = floor
        .checked_add(1)
        .context("the recipient list version cannot grow any further")?;
    if home.next_recipients_version()? < next {
        home.record_recipients_version(next - 1)?;
    }
    sign_and_keep(home)
}

fn print_list_and_next_step(home: &ViewerHome, list: &RecipientList) {
    for r in &list.recipients {
        println!("    {}", describe_recipient(r));
    }
    println!(
        "  Next: `camseal viewer publish --home {} --sink URL` (the sink the cameras poll)",
        home.dir().display()
    );
}

/// The kind as `devices/NAME.pub` names it (`x25519`, `xwing`), or the hex id of a KEM this
/// build does not know.
fn kem_name(kem: u16) -> String {
    match KemKind::from_id(kem) {
        Some(KemKind::X25519) => "x25519".to_owned(),
        Some(KemKind::XWing) => "xwing".to_owned(),
        None => format!("0x{kem:04x}"),
    }
}

struct Row {
    name: String,
    key_id: String,
    kem: String,
    added_in: Option<u64>,
    this: bool,
}
