//! floor-read on the proxy-wasm SDK: every request header read, the host
//! looked for, the target header set. The SDK registers a root context and
//! an HTTP context per stream and exports every callback of the ABI, so
//! Envoy calls each of them on every stream.

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root) });
}}

struct Root;

impl Context for Root {}

impl RootContext for Root {
    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Stream))
    }
}

struct Stream;

impl Context for Stream {}

impl HttpContext for Stream {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        #[cfg(feature = "strings")]
        let svc9 = self.get_http_request_headers().iter().any(|(_, v)| v.starts_with("svc9."));
        #[cfg(not(feature = "strings"))]
        let svc9 = self.get_http_request_headers_bytes().iter().any(|(_, v)| v.starts_with(b"svc9."));
        self.set_http_request_header("x-route-target", Some(if svc9 { "svc9" } else { "svc0" }));
        Action::Continue
    }
}
