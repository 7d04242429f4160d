//! The share view reads a verifier's request: broken text and an image
//! without a request are refused inline; the image of its QR code says who
//! asks, until when and for what, ticks those claims, and the presentation
//! made is bound to its audience and nonce.

use rand::rngs::StdRng;
use rand::SeedableRng;
use slint::{ComponentHandle, Model};
use vouch_core::presentation_request::PresentationRequest;
use vouch_core::qr::{self, EcLevel};
use vouch_core::seal::Cost;
use vouch_core::vc::{self, PresentationRequest as Binding};
use vouch_core::{ClaimPath, SdJwt};
use vouch_ui::ui::{AppWindow, ShareAdapter};
use vouch_ui::{connect, App, Options};
use vouch_wallet::Wallet;

use crate::views::{click, one, transcript, type_in, wait_until};

fn request_error(window: &AppWindow) -> String {
    window
        .global::<ShareAdapter>()
        .get_request_error()
        .to_string()
}

/// Paste, image, pre-ticked claims, the binding.
pub fn a_verifiers_request_read_from_text_or_its_qr_image() {
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = StdRng::seed_from_u64(61);
    let dir = tmp.path().join("w");
    let (mut wallet, _) = Wallet::create(&dir, "long enough", Cost::TEST, &mut rng).unwrap();
    let did = wallet.receive(0, &mut rng).unwrap();
    let now = vouch_ui::connect::now();
    wallet
        .import(&transcript(&did, now - 60), None, now, &mut rng)
        .unwrap();
    let window = AppWindow::new().unwrap();
    let app = App::new(Options {
        dir,
        cost: Cost::TEST,
    });
    let _connection = connect(&window, app.clone());
    app.adopt(&window, wallet);
    click(&window, "Open BSc Computer Science — State University");
    click(&window, "Share…");

    // Broken text, an expired request, an image that is no request.
    type_in(&window, "Verifier request", "VCHR1:%%% not a request");
    click(&window, "Read request");
    assert!(
        request_error(&window).contains("base45"),
        "{}",
        request_error(&window)
    );
    let expired =
        PresentationRequest::new("https://hr.example", "n".repeat(16), now - 5, vec![]).unwrap();
    type_in(&window, "Verifier request", &expired.to_text());
    click(&window, "Read request");
    assert!(
        request_error(&window).contains("expired"),
        "{}",
        request_error(&window)
    );
    let not_request = tmp.path().join("not-request.png");
    let code = qr::qr_code("VCH1:ABC", EcLevel::M).unwrap();
    std::fs::write(&not_request, qr::png(&code, 6, 4).unwrap()).unwrap();
    type_in(&window, "Verifier request", not_request.to_str().unwrap());
    click(&window, "Read request");
    // An image is read on a worker.
    wait_until(&window, "the image read", |w| !request_error(w).is_empty());
    assert!(
        request_error(&window).contains("must start with VCHR1:"),
        "{}",
        request_error(&window)
    );
    type_in(&window, "Verifier request", "hello");
    click(&window, "Read request");
    assert!(
        request_error(&window).contains("neither a verifier's request"),
        "{}",
        request_error(&window)
    );
    assert!(!window.global::<ShareAdapter>().get_has_request());

    // The request's QR image.
    let claims = ["/courses/1", "/courses/4", "/degree"]
        .iter()
        .map(|c| ClaimPath::parse(c).unwrap())
        .collect();
    let nonce = vouch_core::presentation_request::fresh_nonce(&mut rng);
    let asked =
        PresentationRequest::new("https://hr.example", nonce.clone(), now + 300, claims).unwrap();
    let image = tmp.path().join("request.png");
    let code = qr::qr_code(&asked.to_text(), EcLevel::M).unwrap();
    std::fs::write(&image, qr::png(&code, 6, 4).unwrap()).unwrap();
    type_in(&window, "Verifier request", image.to_str().unwrap());
    click(&window, "Read request");
    wait_until(&window, "the request's image read", |w| {
        w.global::<ShareAdapter>().get_has_request()
    });
    let sa = window.global::<ShareAdapter>();
    assert_eq!(request_error(&window), "");
    assert!(sa.get_has_request());
    let summary = one(&window, "Request").accessible_value();
    let summary = summary
        .map(|s| s.to_string())
        .unwrap_or_else(|| sa.get_request_summary().into());
    assert!(
        summary.starts_with("https://hr.example asks, until "),
        "{summary}"
    );
    assert!(summary.contains("Degree: BSc"), "{summary}");
    assert_eq!(sa.get_aud(), "https://hr.example");
    assert_eq!(sa.get_nonce(), nonce.as_str());
    let ticked: Vec<String> = sa
        .get_choices()
        .iter()
        .filter(|c| c.checked)
        .map(|c| c.name.to_string())
        .collect();
    assert_eq!(ticked.len(), 3, "{ticked:?}");
    for name in ["courses[CS101]", "courses[CS104]", "degree"] {
        assert!(ticked.iter().any(|t| t == name), "{name} in {ticked:?}");
    }

    click(&window, "Make QR code");
    assert_eq!(sa.get_error(), "");
    assert!(sa.get_has_qr());
    let text = one(&window, "Presentation text")
        .accessible_value()
        .unwrap()
        .to_string();
    let binding = Binding {
        aud: "https://hr.example".into(),
        nonce,
        max_age: 300,
    };
    let verdict = vc::verify_presentation(&text, &binding, now).unwrap();
    assert!(verdict.is_valid(), "{:?}", verdict.first_failure());
    let claims = SdJwt::parse(&text).unwrap().reveal().unwrap().claims;
    assert_eq!(claims["degree"], "BSc");
    let codes: Vec<&str> = claims["courses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["CS101", "CS104"]);

    click(&window, "Clear request");
    assert!(!window.global::<ShareAdapter>().get_has_request());
}
