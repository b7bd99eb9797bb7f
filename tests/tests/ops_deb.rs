//! The Debian packages `sched-agent` and `schedctl` (cargo-deb metadata in
//! agent/Cargo.toml and schedctl/Cargo.toml, maintainer scripts in
//! deploy/debian/): contents and control fields, then install, reinstall,
//! removal and purge in a temporary root with `dpkg --root`, maintainer
//! scripts run chrootless under `DPKG_ROOT`; the installed agent's `hook
//! uninstall` (what prerm runs) on a Proxmox host's files inside that root,
//! with and without a hook. The machine itself is not touched.
//!
//! No release build: the binaries built next to this test are staged as
//! `<temp>/target/release/<binary>` and `cargo deb --no-build` packages them
//! from there as they are, `--no-strip --no-dbgsym` (a release package's
//! stripped binary and its `-dbgsym` .ddeb are cargo-deb's work): about 5 s
//! for sched-agent, 12 s for schedctl with `--fast` and debug binaries.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::{self, run, run_ok};

/// One Debian package of the workspace.
struct Package {
    name: &'static str,
    binary: &'static str,
    unit: &'static str,
    config: &'static str,
    token: &'static str,
}

const AGENT: Package = Package {
    name: "sched-agent",
    binary: "sched-agent",
    unit: "sched-agent.service",
    config: "/etc/stagger/agent.toml",
    token: "/etc/stagger/agent.token",
};

const COORDINATOR: Package = Package {
    name: "schedctl",
    binary: "schedctl",
    unit: "schedctl.service",
    config: "/etc/stagger/schedctl.toml",
    token: "/etc/stagger/schedctl.token",
};

fn dpkg() -> PathBuf {
    harness::tool("/usr/bin/dpkg", "dpkg")
}

fn dpkg_deb() -> PathBuf {
    harness::tool("/usr/bin/dpkg-deb", "dpkg")
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

/// Builds the package from the already built binary; returns the .deb.
fn build_deb(package: &Package, work: &Path) -> PathBuf {
    let version = run(Command::new(cargo()).args(["deb", "--version"]));
    assert!(
        version.status.success(),
        "cargo-deb is missing: `cargo install --locked cargo-deb` (scripts/test installs it)"
    );
    assert!(
        harness::repo_root().join("config.example.toml").is_file(),
        "config.example.toml is not at the repository root: the packages ship it as \
         /usr/share/doc/{}/config.example.toml (it comes with the agent's and schedctl's \
         configuration, issues 6 and 7)",
        package.name
    );
    let staged = work.join("target/release");
    std::fs::create_dir_all(&staged).expect("staging dir");
    let built = harness::binary(package.binary, package.name);
    std::fs::copy(&built, staged.join(package.binary)).expect("stage the binary");
    let out = work.join("debs");
    run_ok(
        Command::new(cargo())
            .args([
                "deb",
                "--no-build",
                "--no-strip",
                "--no-dbgsym",
                "--fast",
                "-p",
                package.name,
                "-o",
            ])
            .arg(&out)
            .env("CARGO_TARGET_DIR", work.join("target"))
            .current_dir(harness::repo_root()),
    );
    let debs: Vec<PathBuf> = std::fs::read_dir(&out)
        .expect("cargo deb output dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "deb"))
        .collect();
    assert_eq!(debs.len(), 1, "one .deb for {}: {debs:?}", package.name);
    debs[0].clone()
}

fn check_control(package: &Package, deb: &Path) {
    let fields = run_ok(Command::new(dpkg_deb()).arg("--field").arg(deb).args([
        "Package",
        "Section",
        "Depends",
        "Description",
    ]));
    assert!(
        fields.contains(&format!("Package: {}\n", package.name)),
        "{fields}"
    );
    assert!(fields.contains("Section: admin\n"), "{fields}");
    assert!(
        fields.contains("Depends: libc6"),
        "shared-library dependencies: {fields}"
    );
    let info = run_ok(Command::new(dpkg_deb()).arg("--info").arg(deb));
    for script in ["postinst", "prerm", "postrm", "conffiles"] {
        assert!(
            info.contains(&format!(" {script} ")),
            "no {script} in\n{info}"
        );
    }
    let conffiles = run_ok(
        Command::new(dpkg_deb())
            .arg("--info")
            .arg(deb)
            .arg("conffiles"),
    );
    assert_eq!(conffiles.trim(), package.config, "conffiles");
    let postinst = run_ok(
        Command::new(dpkg_deb())
            .arg("--info")
            .arg(deb)
            .arg("postinst"),
    );
    let postinst: String = postinst
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    for start in [
        "systemctl start",
        "deb-systemd-invoke start",
        "deb-systemd-invoke restart",
    ] {
        assert!(
            !postinst.contains(start),
            "postinst must not start the unit: `{start}`"
        );
    }
}

fn check_contents(package: &Package, deb: &Path) {
    let listing = run_ok(Command::new(dpkg_deb()).arg("--contents").arg(deb));
    let entry = |path: &str| {
        listing
            .lines()
            .find(|l| l.ends_with(&format!(" .{path}")))
            .unwrap_or_else(|| panic!("{} lacks {path}:\n{listing}", package.name))
            .to_owned()
    };
    assert!(entry(&format!("/usr/bin/{}", package.binary)).starts_with("-rwxr-xr-x 0/0"));
    assert!(
        entry(&format!("/usr/lib/systemd/system/{}", package.unit)).starts_with("-rw-r--r-- 0/0")
    );
    entry(&format!(
        "/usr/share/doc/{}/config.example.toml",
        package.name
    ));
    entry(&format!("/usr/share/doc/{}/copyright", package.name));
    assert!(entry(package.config).starts_with("-rw-r--r-- 0/0"));
    assert!(
        !listing.contains(".token"),
        "a token must be made on the host, never shipped:\n{listing}"
    );
}

/// An empty dpkg database under `root`.
fn init_root(root: &Path) {
    for dir in [
        "var/lib/dpkg/info",
        "var/lib/dpkg/updates",
        "var/lib/dpkg/triggers",
        "var/log",
    ] {
        std::fs::create_dir_all(root.join(dir)).expect("admin dir");
    }
    std::fs::write(root.join("var/lib/dpkg/status"), "").expect("status file");
}

/// `dpkg --root=<root>` with maintainer scripts run outside a chroot
/// (DPKG_ROOT set); libc6 is not in the empty root's database.
fn dpkg_in(root: &Path, args: &[&str], deb: Option<&Path>) -> String {
    let mut command = Command::new(dpkg());
    command
        .arg(format!("--root={}", root.display()))
        .args(["--force-script-chrootless", "--force-depends"])
        .args(args);
    if let Some(deb) = deb {
        command.arg(deb);
    }
    run_ok(&mut command)
}

fn at(root: &Path, path: &str) -> PathBuf {
    root.join(path.trim_start_matches('/'))
}

fn wants_link(root: &Path, package: &Package) -> PathBuf {
    at(
        root,
        &format!(
            "/etc/systemd/system/multi-user.target.wants/{}",
            package.unit
        ),
    )
}

fn check_install_cycle(package: &Package, deb: &Path, work: &Path) {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let root = work.join("root");
    init_root(&root);
    dpkg_in(&root, &["--install"], Some(deb));

    // the binary runs from where the package put it
    let binary = at(&root, &format!("/usr/bin/{}", package.binary));
    let version = run_ok(Command::new(&binary).arg("--version"));
    assert!(version.starts_with(package.binary), "{version}");

    // the token: made by postinst, root-only, 32 random bytes in hex
    let token_path = at(&root, package.token);
    let token = std::fs::read_to_string(&token_path).expect("postinst made the token");
    let meta = std::fs::metadata(&token_path).expect("token metadata");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600, "token mode");
    assert_eq!((meta.uid(), meta.gid()), (0, 0), "token owner");
    assert_eq!(token.trim_end().len(), 64, "token {token:?}");
    assert!(token.trim_end().bytes().all(|b| b.is_ascii_hexdigit()));

    // enabled at boot, pointing at the shipped unit
    let link = std::fs::read_link(wants_link(&root, package)).expect("the unit is enabled");
    assert_eq!(
        link,
        PathBuf::from(format!("/usr/lib/systemd/system/{}", package.unit))
    );

    if package.name == AGENT.name {
        check_hook_uninstall(&root);
    }

    // installing again (an upgrade) keeps the token and the enablement
    dpkg_in(&root, &["--install"], Some(deb));
    assert_eq!(
        std::fs::read_to_string(&token_path).expect("token"),
        token,
        "token overwritten"
    );
    assert!(wants_link(&root, package).is_symlink());

    // removal: program and unit go, configuration and token stay, unit masked
    dpkg_in(&root, &["--remove", package.name], None);
    assert!(!binary.exists(), "binary left after removal");
    assert!(!at(&root, &format!("/usr/lib/systemd/system/{}", package.unit)).exists());
    assert!(token_path.exists() && at(&root, package.config).exists());
    let mask = std::fs::read_link(at(&root, &format!("/etc/systemd/system/{}", package.unit)));
    assert_eq!(
        mask.ok(),
        Some(PathBuf::from("/dev/null")),
        "unit masked after removal"
    );

    // purge: nothing of the package is left
    dpkg_in(&root, &["--purge", package.name], None);
    for left in [package.token, package.config] {
        assert!(!at(&root, left).exists(), "{left} left after purge");
    }
    assert!(!wants_link(&root, package).exists() && !wants_link(&root, package).is_symlink());
    let status = run(Command::new(dpkg())
        .arg(format!("--root={}", root.display()))
        .args(["--status", package.name]));
    assert!(
        !status.status.success(),
        "{} still known to dpkg",
        package.name
    );
}

/// `/etc/vzdump.conf` as Proxmox VE 8 ships it: every setting commented out.
const PROXMOX_VZDUMP_CONF: &str = "# vzdump default settings\n\n#tmpdir: DIR\n#dumpdir: DIR\n\
     #storage: STORAGE_ID\n#mode: snapshot|suspend|stop\n#bwlimit: KBPS\n#performance: max-workers=N\n\
     #ionice: PRI\n#lockwait: MINUTES\n#stopwait: MINUTES\n#stdexcludes: BOOLEAN\n\
     #mailto: ADDRESSLIST\n#prune-backups: keep-INTERVAL=N[,...]\n#script: FILENAME\n\
     #exclude-path: PATHLIST\n#pigz: N\n#notes-template: {{guestname}}\n";

/// What prerm runs before the binary goes, `sched-agent hook uninstall`, with
/// the installed binary and configuration on a Proxmox host's files inside
/// the temporary root: it exits 0 where the hook was never installed and
/// leaves vzdump.conf alone; after `hook install` it takes the hook out again,
/// byte for byte. (prerm itself runs it only outside a temporary root.)
fn check_hook_uninstall(root: &Path) {
    let binary = at(root, "/usr/bin/sched-agent");
    let vzdump_conf = at(root, "/etc/vzdump.conf");
    std::fs::write(&vzdump_conf, PROXMOX_VZDUMP_CONF).expect("vzdump.conf");
    let pve = at(root, "/etc/pve");
    std::fs::create_dir_all(&pve).expect("etc/pve");
    std::fs::write(pve.join("jobs.cfg"), "").expect("jobs.cfg");
    let hook = at(root, "/usr/local/lib/stagger/vzdump-hook");
    let installed = std::fs::read_to_string(at(root, AGENT.config)).expect("agent.toml");
    let config = root.join("agent-on-this-root.toml");
    std::fs::write(
        &config,
        format!(
            "{installed}\npve-root = \"{}\"\nvzdump-conf = \"{}\"\nhook-script = \"{}\"\nstate-dir = \"{}\"\n",
            pve.display(),
            vzdump_conf.display(),
            hook.display(),
            at(root, "/var/lib/stagger").display()
        ),
    )
    .expect("agent config");
    let uninstall = || {
        run(Command::new(&binary)
            .arg("--config")
            .arg(&config)
            .args(["hook", "uninstall"]))
    };

    let output = uninstall();
    assert!(
        output.status.success(),
        "hook uninstall without a hook failed ({}): the package could not be removed\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("not installed"),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert_eq!(
        std::fs::read_to_string(&vzdump_conf).expect("vzdump.conf"),
        PROXMOX_VZDUMP_CONF
    );

    run_ok(
        Command::new(&binary)
            .arg("--config")
            .arg(&config)
            .args(["hook", "install"]),
    );
    let with_hook = std::fs::read_to_string(&vzdump_conf).expect("vzdump.conf");
    assert!(
        with_hook.contains(&format!("\nscript: {}\n", hook.display())),
        "{with_hook}"
    );
    let output = uninstall();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        std::fs::read_to_string(&vzdump_conf).expect("vzdump.conf"),
        PROXMOX_VZDUMP_CONF,
        "vzdump.conf not restored"
    );
    assert!(!hook.exists(), "the wrapper is left behind");
    std::fs::remove_file(&vzdump_conf).expect("vzdump.conf");
    std::fs::remove_dir_all(&pve).expect("etc/pve");
}

/// A token the admin put there before the package came is kept as it is.
fn check_existing_token_kept(package: &Package, deb: &Path, work: &Path) {
    let root = work.join("root-with-token");
    init_root(&root);
    let token_path = at(&root, package.token);
    std::fs::create_dir_all(token_path.parent().expect("token dir")).expect("etc/stagger");
    std::fs::write(&token_path, "chosen-by-the-admin\n").expect("token");
    dpkg_in(&root, &["--install"], Some(deb));
    assert_eq!(
        std::fs::read_to_string(&token_path).expect("token"),
        "chosen-by-the-admin\n"
    );
}

fn check_package(package: &Package) {
    let work = tempfile::tempdir().expect("temp dir");
    let deb = build_deb(package, work.path());
    check_control(package, &deb);
    check_contents(package, &deb);
    check_install_cycle(package, &deb, work.path());
    check_existing_token_kept(package, &deb, work.path());
}

#[test]
fn agent_package_installs_enables_and_purges_in_a_temporary_root() {
    check_package(&AGENT);
}

#[test]
fn coordinator_package_installs_enables_and_purges_in_a_temporary_root() {
    check_package(&COORDINATOR);
}

#[test]
fn coordinator_package_ships_the_rules_and_the_dashboard() {
    let work = tempfile::tempdir().expect("temp dir");
    let deb = build_deb(&COORDINATOR, work.path());
    let listing = run_ok(Command::new(dpkg_deb()).arg("--contents").arg(&deb));
    for file in [
        "prometheus/stagger-rules.yml",
        "prometheus/backup-window-inhibit.yml",
        "alertmanager/backup-window-inhibit.yml",
        "grafana/stagger.json",
    ] {
        assert!(
            listing.contains(&format!("./usr/share/doc/schedctl/{file}\n")),
            "schedctl lacks {file}:\n{listing}"
        );
    }
}
