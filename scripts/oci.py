#!/usr/bin/env python3
"""`make oci`: package the built filter as an OCI image Istio can pull.

Istio's image fetcher accepts an OCI image with exactly one
`application/vnd.oci.image.layer.v1.tar+gzip` layer holding `plugin.wasm`
(the "compat" variant). This writes that image as an OCI image layout
directory and a tarball of it, without Docker, byte-for-byte reproducible
(fixed timestamps, owners and gzip header), and prints how to push it.

usage: oci.py WASM OUT_DIR TAG
"""
import gzip
import hashlib
import io
import json
import os
import sys
import tarfile

LAYER_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
CONFIG_MEDIA_TYPE = "application/vnd.oci.image.config.v1+json"
MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
INDEX_MEDIA_TYPE = "application/vnd.oci.image.index.v1+json"


def deterministic_tar(members):
    """A tar of (name, bytes) with every varying field fixed."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def canonical_json(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def build(wasm_bytes, tag):
    """The blobs of the image and its index: {digest: bytes}, index bytes."""
    layer_tar = deterministic_tar([("plugin.wasm", wasm_bytes)])
    layer = gzip.compress(layer_tar, compresslevel=9, mtime=0)
    # OCI requires os/architecture; a wasm module has neither, and
    # registries and Istio ignore them, so use what `FROM scratch` images get.
    config = canonical_json({
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [digest(layer_tar)]},
    })
    manifest = canonical_json({
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": {"mediaType": CONFIG_MEDIA_TYPE, "digest": digest(config), "size": len(config)},
        "layers": [{
            "mediaType": LAYER_MEDIA_TYPE,
            "digest": digest(layer),
            "size": len(layer),
            "annotations": {"org.opencontainers.image.title": "plugin.wasm"},
        }],
        "annotations": {
            "org.opencontainers.image.title": "canary-router",
            "org.opencontainers.image.description": "proxy-wasm filter: canary, A/B and blue/green routing",
        },
    })
    index = canonical_json({
        "schemaVersion": 2,
        "mediaType": INDEX_MEDIA_TYPE,
        "manifests": [{
            "mediaType": MANIFEST_MEDIA_TYPE,
            "digest": digest(manifest),
            "size": len(manifest),
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }],
    })
    blobs = {digest(b): b for b in (layer, config, manifest)}
    return blobs, index, digest(manifest)


def write_layout(out_dir, blobs, index):
    """An OCI image layout directory, and the same files as one tarball."""
    files = [("oci-layout", canonical_json({"imageLayoutVersion": "1.0.0"})), ("index.json", index)]
    files += [("blobs/sha256/" + d.split(":")[1], b) for d, b in sorted(blobs.items())]
    for name, data in files:
        path = os.path.join(out_dir, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
    tarball = out_dir.rstrip("/") + ".tar"
    with open(tarball, "wb") as f:
        f.write(deterministic_tar(files))
    return tarball


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    wasm_path, out_dir, tag = sys.argv[1:]
    with open(wasm_path, "rb") as f:
        wasm_bytes = f.read()
    blobs, index, manifest_digest = build(wasm_bytes, tag)
    tarball = write_layout(out_dir, blobs, index)
    print(f"OCI image layout: {out_dir} (tag {tag})")
    print(f"OCI layout tarball: {tarball}")
    print(f"image digest: {manifest_digest}")
    # Quoted: Kubernetes reads YAML 1.1, where an all-digit digest is a number.
    hex_digest = manifest_digest.split(":")[1]
    print(f'for the WasmPlugin:  sha256: "{hex_digest}"')
    print(f'for the EnvoyExtensionPolicy:  code.sha256: "{hex_digest}"')
    print(f"for from-nginx --to:  --sha256 {hex_digest}")
    print()
    print("Push it with any of:")
    print(f"  oras cp --from-oci-layout {out_dir}:{tag} REGISTRY/canary-router:{tag}")
    print(f"  skopeo copy oci:{out_dir}:{tag} docker://REGISTRY/canary-router:{tag}")
    print(f"  crane push {out_dir} REGISTRY/canary-router:{tag}")
    print(f"then set the WasmPlugin's url: oci://REGISTRY/canary-router:{tag}")


if __name__ == "__main__":
    main()
