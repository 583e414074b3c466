//! The browser peer's smoke test: headless Chromium loads one page from a loopback server,
//! runs its script, and leaves no process behind. Needs `--features browser`.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use test_support::browser::{Browser, dump_dom, fantoccini::Locator};
use test_support::process::processes_with_arg;
use test_support::wait_until;

/// Serves `page` to every request on a loopback port, from a thread, until the process ends.
fn serve(page: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\n\
                 connection: close\r\n\r\n",
                page.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(page.as_bytes());
        }
    });
    url
}

const PAGE: &str = "<!doctype html><title>smoke</title><p id=out>static</p>\
<script>document.getElementById('out').textContent = 'ran ' + (6 * 7);</script>";

#[tokio::test]
#[ignore = "needs chromium and chromium-driver: run by .ci/run"]
async fn chromium_runs_a_page_script_over_webdriver_and_leaves_nothing() {
    let url = serve(PAGE);
    let started = Instant::now();
    let browser = Browser::start().await.expect("start chromedriver and chromium");
    println!("browser session open in {:?}", started.elapsed());
    browser.client().goto(&url).await.unwrap();
    let text = browser.client().find(Locator::Id("out")).await.unwrap().text().await.unwrap();
    assert_eq!(text, "ran 42");
    let profile = browser.profile_dir().display().to_string();
    browser.close().await.unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || processes_with_arg(&profile).is_empty()),
        "left behind: {:?}",
        processes_with_arg(&profile)
    );

    // Dropped without close: still nothing left.
    let browser = Browser::start().await.expect("start again");
    browser.client().goto(&url).await.unwrap();
    let (profile, driver) = (browser.profile_dir().display().to_string(), browser.driver_pid());
    drop(browser);
    let gone = wait_until(Duration::from_secs(10), || {
        processes_with_arg(&profile).is_empty()
            && test_support::process::group_members(driver).is_empty()
    });
    assert!(gone, "left behind: {:?}", processes_with_arg(&profile));
}

#[test]
#[ignore = "needs chromium: run by .ci/run"]
fn dump_dom_returns_the_dom_after_scripts_ran() {
    let url = serve(PAGE);
    let started = Instant::now();
    let dom = dump_dom(&url).expect("chromium --dump-dom");
    println!("dump-dom took {:?}", started.elapsed());
    assert!(dom.contains("<p id=\"out\">ran 42</p>"), "{dom}");
}
