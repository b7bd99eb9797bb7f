//! Headless Chromium (Debian `chromium`): a screenshot and the DOM of a page,
//! each from a fresh browser profile, for a `file://` page or a served one.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::tool;

/// How long one browser run may take before the test gives up on it.
const RUN_LIMIT: Duration = Duration::from_secs(90);

/// What Chromium made of a page.
pub struct Rendered {
    /// The screenshot, PNG bytes.
    pub png: Vec<u8>,
    /// The DOM after the page loaded, serialised (`--dump-dom`).
    pub dom: String,
}

/// Loads `url` in headless Chromium at `width`×`height`: one run for the
/// screenshot, one for the DOM.
pub fn render(url: &str, width: u32, height: u32) -> Rendered {
    let work = tempfile::tempdir().expect("temp dir");
    let shot = work.path().join("page.png");
    let stdout = chromium(
        work.path(),
        &[
            format!("--screenshot={}", shot.display()),
            format!("--window-size={width},{height}"),
            "--hide-scrollbars".into(),
        ],
        url,
    );
    let png = std::fs::read(&shot).unwrap_or_else(|e| {
        panic!(
            "chromium wrote no screenshot of {url} ({}): {e}\n{stdout}",
            shot.display()
        )
    });
    let dom = chromium(work.path(), &["--dump-dom".into()], url);
    Rendered { png, dom }
}

/// The `file://` URL of a local file.
pub fn file_url(path: &Path) -> String {
    let absolute =
        std::fs::canonicalize(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    format!("file://{}", absolute.display())
}

/// One Chromium run with its own new profile directory; returns stdout.
fn chromium(work: &Path, extra: &[String], url: &str) -> String {
    let binary: PathBuf = tool("/usr/bin/chromium", "chromium");
    let profile = tempfile::tempdir_in(work).expect("profile dir");
    let out = work.join(format!("chromium-{}.out", extra.len()));
    let err = work.join(format!("chromium-{}.err", extra.len()));
    let mut child = Command::new(binary)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).expect("stdout file"))
        .stderr(std::fs::File::create(&err).expect("stderr file"))
        .spawn()
        .expect("start chromium");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for chromium") {
            break status;
        }
        if started.elapsed() > RUN_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "chromium did not finish {url} within {RUN_LIMIT:?}:\n{}",
                std::fs::read_to_string(&err).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = std::fs::read_to_string(&out).unwrap_or_default();
    assert!(
        status.success(),
        "chromium {extra:?} {url} failed ({status}):\n{}",
        std::fs::read_to_string(&err).unwrap_or_default()
    );
    stdout
}

/// A decoded screenshot.
pub struct Image {
    /// Width in pixels.
    pub width: usize,
    channels: usize,
    pixels: Vec<u8>,
}

impl Image {
    /// Decodes PNG bytes (with `png`).
    pub fn decode(png_bytes: &[u8]) -> Image {
        let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
        let mut reader = decoder.read_info().expect("the screenshot is a PNG");
        let mut pixels = vec![0; reader.output_buffer_size().expect("PNG size fits memory")];
        let info = reader
            .next_frame(&mut pixels)
            .expect("decode the screenshot");
        pixels.truncate(info.buffer_size());
        let channels = info.color_type.samples();
        assert!(channels >= 3, "the screenshot is not RGB");
        assert_eq!(
            info.bit_depth,
            png::BitDepth::Eight,
            "the screenshot has 8 bits per channel"
        );
        Image {
            width: info.width as usize,
            channels,
            pixels,
        }
    }

    /// The pixels (RGB, alpha dropped) of the columns `columns`, row by row.
    fn rgb_in(&self, columns: std::ops::Range<usize>) -> impl Iterator<Item = &[u8]> + '_ {
        let row_bytes = self.width * self.channels;
        self.pixels.chunks_exact(row_bytes).flat_map(move |row| {
            row[columns.start * self.channels..columns.end.min(self.width) * self.channels]
                .chunks_exact(self.channels)
                .map(|pixel| &pixel[..3])
        })
    }

    /// The number of distinct colours.
    pub fn distinct_colours(&self) -> usize {
        self.rgb_in(0..self.width)
            .collect::<std::collections::HashSet<_>>()
            .len()
    }

    /// How many pixels of the columns `columns` have each of the given RGB
    /// colours, exactly.
    pub fn count_in(&self, columns: std::ops::Range<usize>, colours: &[[u8; 3]]) -> Vec<usize> {
        let mut counts = vec![0; colours.len()];
        for pixel in self.rgb_in(columns) {
            for (count, colour) in counts.iter_mut().zip(colours) {
                if pixel == &colour[..] {
                    *count += 1;
                }
            }
        }
        counts
    }

    /// How many pixels of the whole image have each of the given colours.
    pub fn count(&self, colours: &[[u8; 3]]) -> Vec<usize> {
        self.count_in(0..self.width, colours)
    }
}
