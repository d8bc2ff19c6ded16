"""The OCI image `make oci` writes is one Istio's image fetcher accepts: a
valid image layout whose single tar+gzip layer unpacks to the exact .wasm.

Run by `make test` (python3 -m unittest discover -s tests/oci).
"""
import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WASM = os.path.join(ROOT, "target", "wasm32-wasip1", "release", "canary_router.wasm")


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def make_image(out_dir, tag="1.2.3"):
    subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "oci.py"), WASM, out_dir, tag],
                   check=True, capture_output=True)


class OciImage(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.exists(WASM):
            raise AssertionError(f"{WASM} is missing: build it with `make build`")
        with open(WASM, "rb") as f:
            cls.wasm = f.read()
        cls.tmp = tempfile.TemporaryDirectory()
        cls.layout = os.path.join(cls.tmp.name, "canary-router")
        make_image(cls.layout)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def blob(self, descriptor):
        """A blob's bytes, after checking its digest and size."""
        algorithm, hex_digest = descriptor["digest"].split(":")
        self.assertEqual(algorithm, "sha256")
        with open(os.path.join(self.layout, "blobs", "sha256", hex_digest), "rb") as f:
            data = f.read()
        self.assertEqual(sha256(data), descriptor["digest"], "blob content does not match its digest")
        self.assertEqual(len(data), descriptor["size"], "blob size does not match its descriptor")
        return data

    def manifest(self):
        with open(os.path.join(self.layout, "index.json")) as f:
            index = json.load(f)
        self.assertEqual(index["schemaVersion"], 2)
        self.assertEqual(len(index["manifests"]), 1)
        descriptor = index["manifests"][0]
        self.assertEqual(descriptor["mediaType"], "application/vnd.oci.image.manifest.v1+json")
        self.assertEqual(descriptor["annotations"]["org.opencontainers.image.ref.name"], "1.2.3")
        return json.loads(self.blob(descriptor))

    def test_layout_marker(self):
        with open(os.path.join(self.layout, "oci-layout")) as f:
            self.assertEqual(json.load(f), {"imageLayoutVersion": "1.0.0"})

    def test_manifest_config_and_layer_digests_and_sizes_are_valid(self):
        manifest = self.manifest()
        self.assertEqual(manifest["schemaVersion"], 2)
        self.assertEqual(manifest["mediaType"], "application/vnd.oci.image.manifest.v1+json")
        config = json.loads(self.blob(manifest["config"]))
        self.assertEqual(manifest["config"]["mediaType"], "application/vnd.oci.image.config.v1+json")
        self.assertTrue(config["architecture"] and config["os"])
        self.assertEqual(len(manifest["layers"]), 1, "Istio requires exactly one layer")
        layer = manifest["layers"][0]
        self.assertEqual(layer["mediaType"], "application/vnd.oci.image.layer.v1.tar+gzip")
        compressed = self.blob(layer)
        self.assertEqual(config["rootfs"], {"type": "layers", "diff_ids": [sha256(gzip.decompress(compressed))]})

    def test_the_layer_unpacks_to_exactly_the_built_wasm(self):
        layer = self.manifest()["layers"][0]
        with tarfile.open(fileobj=io.BytesIO(self.blob(layer)), mode="r:gz") as tar:
            members = tar.getmembers()
            self.assertEqual([m.name for m in members], ["plugin.wasm"])
            self.assertTrue(members[0].isfile())
            self.assertEqual(tar.extractfile(members[0]).read(), self.wasm)

    def test_the_tarball_holds_the_same_layout(self):
        with tarfile.open(self.layout + ".tar") as tar:
            names = sorted(tar.getnames())
            self.assertIn("oci-layout", names)
            self.assertIn("index.json", names)
            for name in names:
                with open(os.path.join(self.layout, name), "rb") as f:
                    self.assertEqual(tar.extractfile(name).read(), f.read(), name)

    def test_the_image_is_reproducible(self):
        with tempfile.TemporaryDirectory() as other:
            make_image(os.path.join(other, "canary-router"))
            with open(os.path.join(other, "canary-router.tar"), "rb") as f:
                again = f.read()
        with open(self.layout + ".tar", "rb") as f:
            self.assertEqual(f.read(), again, "two builds of the same .wasm differ")


if __name__ == "__main__":
    unittest.main()
