//! The filter itself in each home: where its code comes from (`--image`,
//! `--sha256`, `--wasm`), checked before anything is written, and the
//! plugin object that loads it: Envoy Gateway's EnvoyExtensionPolicy,
//! Istio's WasmPlugin or its newer TrafficExtension, or the path in an
//! Envoy bootstrap.

use serde_json::{json, Map, Value};

use super::homes::Home;
use crate::Failure;

/// The image `make oci` pushes, until `--image` names yours.
const PLACEHOLDER_IMAGE: &str = "oci://registry.example.com/canary-router:0.1.0";
/// One digit 64 times: `check` warns about it.
const PLACEHOLDER_DIGEST: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// Where `make build` writes the module, relative to the repository.
pub const BUILT_WASM: &str = "target/wasm32-wasip1/release/canary_router.wasm";

/// Which object loads the filter in Istio.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum IstioPlugin {
    /// `WasmPlugin` (every Istio release that has Wasm).
    WasmPlugin,
    /// `TrafficExtension`, Istio 1.30's newer API (istiod turns every
    /// WasmPlugin into one).
    TrafficExtension,
}

/// The options that say where the filter's code comes from, as given.
pub struct Options {
    pub image: Option<String>,
    pub sha256: Option<String>,
    pub wasm: Option<String>,
    pub istio_plugin: IstioPlugin,
}

/// Where the code comes from, checked.
pub struct Plugin {
    source: Source,
    sha256: String,
    /// The module's path in an Envoy bootstrap.
    pub wasm: String,
    istio_plugin: IstioPlugin,
}

enum Source {
    /// Fetched over HTTP(S): Envoy Gateway's `type: HTTP`.
    Http(String),
    /// An OCI image (`oci://` or a bare `registry/image:tag`).
    Image(String),
}

impl Plugin {
    /// Checks the options against the home: a digest is 64 hex digits, the
    /// image's scheme is one a home can fetch, and an option the home does
    /// not use is said to be ignored.
    pub fn new(home: Home, options: &Options, warnings: &mut Vec<String>) -> Result<Plugin, Failure> {
        let sha256 = match &options.sha256 {
            Some(sha) => {
                let lower = sha.to_ascii_lowercase();
                if !crate::input::is_sha256(&lower) {
                    return Err(Failure::Usage(format!(
                        "--sha256 {sha:?} is not a sha256: 64 hex digits, as `make oci` prints it"
                    )));
                }
                lower
            }
            None => PLACEHOLDER_DIGEST.to_string(),
        };
        let url = options.image.clone().unwrap_or_else(|| PLACEHOLDER_IMAGE.to_string());
        let source = match url.split_once("://").map(|(scheme, _)| scheme) {
            Some("http" | "https") => Source::Http(url),
            Some("oci") | None => Source::Image(url),
            Some(other) => {
                return Err(Failure::Usage(format!(
                    "--image {url:?}: a `{other}://` URL is no place a gateway fetches a module from: \
                     give an OCI image (oci://REGISTRY/IMAGE:TAG) or an http(s):// URL of the .wasm"
                )))
            }
        };
        let uses_image = matches!(home, Home::EnvoyGateway | Home::Istio | Home::IstioGatewayApi);
        for (given, option) in [(&options.image, "--image"), (&options.sha256, "--sha256")] {
            if given.is_some() && !uses_image {
                warnings.push(format!(
                    "{option} is ignored with --to {}: it is for the plugin objects of envoy-gateway, istio and \
                     istio-gateway-api",
                    home.name()
                ));
            }
        }
        if options.wasm.is_some() && home != Home::Envoy {
            warnings.push(format!(
                "--wasm is ignored with --to {}: it is the module's path in --to envoy",
                home.name()
            ));
        }
        if options.istio_plugin != IstioPlugin::WasmPlugin
            && !matches!(home, Home::Istio | Home::IstioGatewayApi)
        {
            warnings.push(format!(
                "--istio-plugin is ignored with --to {}: it is for istio and istio-gateway-api",
                home.name()
            ));
        }
        if home == Home::Envoy && options.wasm.is_none() {
            warnings.push(format!(
                "the bootstrap loads the filter from {BUILT_WASM}, where `make build` writes it, relative to the \
                 directory Envoy runs in: set --wasm to the module's path on the proxy's host"
            ));
        }
        Ok(Plugin {
            source,
            sha256,
            wasm: options.wasm.clone().unwrap_or_else(|| BUILT_WASM.to_string()),
            istio_plugin: options.istio_plugin,
        })
    }

    /// An EnvoyExtensionPolicy's `code`: the source, its URL and digest
    /// together (`code.http.sha256` or `code.image.sha256`).
    pub fn envoy_gateway_code(&self) -> Value {
        match &self.source {
            Source::Http(url) => json!({ "type": "HTTP", "http": { "url": url, "sha256": self.sha256 } }),
            Source::Image(url) => json!({ "type": "Image", "image": { "url": url, "sha256": self.sha256 } }),
        }
    }

    /// Istio's plugin object in `namespace`, attached by `attach`
    /// (`selector` or `targetRefs`), running `config`.
    pub fn istio(&self, name: &str, namespace: &str, attach: Value, config: &Value) -> Value {
        let url = match &self.source {
            Source::Http(url) | Source::Image(url) => url,
        };
        let wasm = [
            ("url", json!(url)),
            ("sha256", json!(self.sha256)),
            ("pluginName", json!("canary-router")),
            ("failStrategy", json!("FAIL_RELOAD")),
            ("pluginConfig", config.clone()),
        ];
        let mut spec: Map<String, Value> = attach.as_object().cloned().unwrap_or_default();
        spec.insert("phase".into(), json!("AUTHN"));
        let kind = match self.istio_plugin {
            IstioPlugin::WasmPlugin => {
                spec.extend(wasm.map(|(k, v)| (k.to_string(), v)));
                "WasmPlugin"
            }
            IstioPlugin::TrafficExtension => {
                let wasm: Map<String, Value> = wasm.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
                spec.insert("wasm".into(), Value::Object(wasm));
                "TrafficExtension"
            }
        };
        json!({
            "apiVersion": "extensions.istio.io/v1alpha1",
            "kind": kind,
            "metadata": { "name": name, "namespace": namespace },
            "spec": spec,
        })
    }
}
