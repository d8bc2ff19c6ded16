//! Ingress objects as the translation needs them: annotations (an empty
//! one is unset, as in ingress-nginx), each host and path with its Service
//! and port, and the default backend; both the `networking.k8s.io/v1`
//! shape and the older `serviceName`/`servicePort` one.

use serde_json::{Map, Value};

use crate::Failure;

pub const PREFIX: &str = "nginx.ingress.kubernetes.io/";

/// A Service an Ingress sends to, with its port as written.
#[derive(Clone, Debug, PartialEq)]
pub struct Backend {
    pub service: String,
    /// A number or a port name; `None` when not given.
    pub port: Option<String>,
}

/// One host and path of an Ingress and its backend.
#[derive(Clone, Debug)]
pub struct Path {
    /// Empty: any host.
    pub host: String,
    pub path: String,
    pub path_type: String,
    pub backend: Backend,
}

pub struct Ingress {
    pub name: String,
    /// `metadata.namespace`, `default` when not given (as kubectl does).
    pub namespace: String,
    annotations: Map<String, Value>,
    pub paths: Vec<Path>,
    pub default_backend: Option<Backend>,
    /// Whether `spec.tls` names any certificate.
    pub tls: bool,
}

impl Ingress {
    /// An annotation's value; set to the empty string, it is unset.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations
            .get(&format!("{PREFIX}{key}"))
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|v| !v.is_empty())
    }

    /// The `nginx.ingress.kubernetes.io/` annotations, by short name.
    pub fn nginx_annotations(&self) -> impl Iterator<Item = &str> {
        self.annotations.keys().filter_map(|k| k.strip_prefix(PREFIX))
    }

    pub fn is_canary(&self) -> bool {
        self.annotation("canary") == Some("true")
    }
}

fn backend(value: &Value) -> Option<Backend> {
    if let Some(service) = value["service"]["name"].as_str() {
        let port = &value["service"]["port"];
        let port =
            port["number"].as_u64().map(|n| n.to_string()).or(port["name"].as_str().map(str::to_string));
        return Some(Backend { service: service.to_string(), port });
    }
    // extensions/v1beta1 and networking.k8s.io/v1beta1.
    let service = value["serviceName"].as_str()?;
    let port = match &value["servicePort"] {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(s.clone()),
        _ => None,
    };
    Some(Backend { service: service.to_string(), port })
}

pub fn parse(value: &Value, origin: &str) -> Result<Ingress, Failure> {
    let name = value["metadata"]["name"].as_str().unwrap_or("?").to_string();
    let namespace = value["metadata"]["namespace"].as_str().unwrap_or("default").to_string();
    let annotations = value["metadata"]["annotations"].as_object().cloned().unwrap_or_default();
    let mut paths = Vec::new();
    for rule in value["spec"]["rules"].as_array().into_iter().flatten() {
        let host = rule["host"].as_str().unwrap_or("").to_string();
        for path in rule["http"]["paths"].as_array().into_iter().flatten() {
            let backend = backend(&path["backend"]).ok_or_else(|| {
                Failure::Invalid(format!(
                    "{origin}: Ingress {name}: host {host:?} path {:?} has no backend Service",
                    path["path"].as_str().unwrap_or("/")
                ))
            })?;
            paths.push(Path {
                host: host.clone(),
                path: path["path"].as_str().unwrap_or("/").to_string(),
                path_type: path["pathType"].as_str().unwrap_or("Prefix").to_string(),
                backend,
            });
        }
    }
    let spec = &value["spec"];
    let default_backend = backend(&spec["defaultBackend"]).or_else(|| backend(&spec["backend"]));
    let tls = spec["tls"].as_array().is_some_and(|t| !t.is_empty());
    Ok(Ingress { name, namespace, annotations, paths, default_backend, tls })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn both_backend_shapes_and_empty_annotations_read_as_ingress_nginx_reads_them() {
        let old = json!({
            "metadata": {"name": "old", "annotations": {"nginx.ingress.kubernetes.io/canary-by-header": ""}},
            "spec": {"backend": {"serviceName": "web", "servicePort": 8080},
                     "rules": [{"host": "a.test", "http": {"paths": [{"path": "/x", "backend": {"serviceName": "api", "servicePort": "http"}}]}}]}
        });
        let Ok(ingress) = parse(&old, "f") else { panic!("not parsed") };
        assert_eq!(ingress.annotation("canary-by-header"), None);
        assert_eq!(ingress.paths[0].backend, Backend { service: "api".into(), port: Some("http".into()) });
        assert_eq!(
            ingress.default_backend,
            Some(Backend { service: "web".into(), port: Some("8080".into()) })
        );
    }
}
