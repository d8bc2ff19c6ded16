"""The image `make oci` writes goes through a real registry as Istio's and
Envoy Gateway's fetchers meet it: pushed with skopeo to Debian's
docker-registry on loopback, pulled back by tag, and the pulled manifest,
its digest (the `sha256` a WasmPlugin or EnvoyExtensionPolicy pins) and
the .wasm in its layer are byte-identical to what was built.

Needs `docker-registry` and `skopeo` (`make registry` installs the Debian
packages; or set DOCKER_REGISTRY= and SKOPEO=). Run by `make test`.
"""
import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import unittest
import urllib.request

from test_oci_image import ROOT, WASM, make_image

TAG = "1.2.3"


def tool(variable, name):
    path = os.environ.get(variable) or shutil.which(name)
    if not path:
        raise AssertionError(f"{name} is missing: `make registry` installs it (or set {variable}=)")
    return path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ThroughARegistry(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.exists(WASM):
            raise AssertionError(f"{WASM} is missing: build it with `make build`")
        registry, cls.skopeo = tool("DOCKER_REGISTRY", "docker-registry"), tool("SKOPEO", "skopeo")
        cls.tmp = tempfile.TemporaryDirectory()
        cls.port = free_port()
        config = os.path.join(cls.tmp.name, "registry.yml")
        with open(config, "w") as f:
            f.write(
                "version: 0.1\n"
                f"storage: {{ filesystem: {{ rootdirectory: {cls.tmp.name}/storage }} }}\n"
                f"http: {{ addr: 127.0.0.1:{cls.port} }}\n"
                "log: { level: warn }\n"
            )
        cls.log = open(os.path.join(cls.tmp.name, "registry.log"), "w")
        cls.registry = subprocess.Popen([registry, "serve", config], stdout=cls.log, stderr=cls.log)
        deadline = time.time() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{cls.port}/v2/") as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if cls.registry.poll() is not None or time.time() > deadline:
                raise AssertionError("docker-registry did not start: " + open(cls.log.name).read())
            time.sleep(0.1)
        cls.layout = os.path.join(cls.tmp.name, "canary-router")
        make_image(cls.layout, TAG)

    @classmethod
    def tearDownClass(cls):
        cls.registry.terminate()
        cls.registry.wait(10)
        cls.log.close()
        cls.tmp.cleanup()

    def skopeo_run(self, *args):
        # A loopback registry speaks plain HTTP; no policy file is installed.
        done = subprocess.run([self.skopeo, "--insecure-policy", *args], capture_output=True, text=True)
        self.assertEqual(done.returncode, 0, done.stderr)
        return done.stdout

    def test_pushed_and_pulled_back_byte_identical(self):
        reference = f"docker://127.0.0.1:{self.port}/canary-router:{TAG}"
        self.skopeo_run("copy", "--dest-tls-verify=false", f"oci:{self.layout}:{TAG}", reference)

        with open(os.path.join(self.layout, "index.json")) as f:
            built_digest = json.load(f)["manifests"][0]["digest"]
        # The digest `make oci` tells the user to pin, quoted for YAML 1.1.
        printed = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "oci.py"),
                                  WASM, os.path.join(self.tmp.name, "again"), TAG],
                                 capture_output=True, text=True, check=True).stdout
        self.assertIn(f'sha256: "{built_digest.split(":")[1]}"', printed)
        with open(os.path.join(self.layout, "blobs", "sha256", built_digest.split(":")[1]), "rb") as f:
            built_manifest = f.read()

        # What a fetcher asks the registry for: the manifest by tag.
        raw = self.skopeo_run("inspect", "--raw", "--tls-verify=false", reference).encode()
        self.assertEqual(raw, built_manifest, "the registry serves another manifest than was pushed")
        self.assertEqual("sha256:" + hashlib.sha256(raw).hexdigest(), built_digest,
                         "the digest a plugin pins is not the one the registry serves")

        pulled = os.path.join(self.tmp.name, "pulled")
        self.skopeo_run("copy", "--src-tls-verify=false", reference, f"oci:{pulled}:{TAG}")
        manifest = json.loads(raw)
        layer = manifest["layers"][0]["digest"].split(":")[1]
        with open(os.path.join(pulled, "blobs", "sha256", layer), "rb") as f:
            compressed = f.read()
        with tarfile.open(fileobj=io.BytesIO(compressed), mode="r:gz") as tar:
            module = tar.extractfile("plugin.wasm").read()
        with open(WASM, "rb") as f:
            self.assertEqual(module, f.read(), "the .wasm pulled back differs from the one built")


if __name__ == "__main__":
    unittest.main()
