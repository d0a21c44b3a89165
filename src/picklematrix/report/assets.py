"""asv's web assets offline: pinned npm packages fetched, checked, vendored into the site, and pages pointed at them.

asv's pages load jQuery, flot, bootstrap, stupidtable and blueimp-md5 from CDNs. The same files come from
pinned npm packages (``WEB_ASSETS``, fetched from the npm registry by Python, with no Node.js or npm, into a cache
outside git, checked against the registry's integrity hash), are copied into ``<html>/vendor/`` and the pages are
pointed at them. Where the
package's file is byte-identical to what asv asked for, asv's own ``integrity`` attribute stays, so the
browser checks it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class NpmPackage:
    """One pinned npm package."""

    name: str
    version: str
    integrity: str  # the registry's dist.integrity: a tarball that does not match is rejected

    @property
    def dirname(self) -> str:
        return f"{self.name}-{self.version}"


@dataclass(frozen=True)
class WebAsset:
    """One file asv's page loads from a CDN, and where the same file is in a pinned npm package."""

    url: str  # what asv's index.html loads
    package: NpmPackage
    path: str  # the same file inside the npm package
    also: tuple = ()  # files the asset loads in turn (bootstrap's css -> ../fonts/)


_JQUERY = NpmPackage("jquery", "3.3.1", "sha512-Ubldcmxp5np52/ENotGxlLe6aGMvmF4R8S6tZjsP6Knsaxd/xp3Zrh50cG93lR6nPXyUFwzN3ZSOQI0wRJNdGg==")
_FLOT = NpmPackage("flot", "0.8.3", "sha512-xg2otcTJDvS+ERK+my4wxG/ASq90QURXtoM4LhacCq0jQW2jbyjdttbRNqU2cPykrpMvJ6b2uSp6SAgYAzj9tQ==")
_ORDERBARS = NpmPackage("flot-orderbars", "1.0.0", "sha512-Jv51fvzevUjNXEeozpwEKfPjhiZhfiJddv0WHjduUTCmSF+7T5K7C9c9Y1wIVmUhDBv5fLMjgbwKecT0GIKPZA==")
# cdnjs's "stupidtable" 1.0.1 is not on npm; the same plugin (joequery/Stupid-Table-Plugin) is published as
# stupid-table-plugin, whose only release 1.1.3 keeps the API asv uses (stupidtable(), stupidsort()).
_STUPIDTABLE = NpmPackage("stupid-table-plugin", "1.1.3", "sha512-2Vk7XouQPxUQPRe9w0Fu7ZZ8kHLK7rDoLMsCgtKxRNJ7f4dSOGvW9CkHsq5wD6QsaEnWoyLBYH3xOEsrK3yWBg==")
_MD5 = NpmPackage("blueimp-md5", "2.19.0", "sha512-DRQrD6gJyy8FbiE4s+bDoXS9hiW3Vbx5uCdwvcCf3zLHL+Iv7LtGHLpr+GZV8rHG8tK766FGYBwRbu8pELTt+w==")
_BOOTSTRAP = NpmPackage("bootstrap", "3.1.1", "sha512-TAzqS8E/ISpVHP29gYhy+1NSV+FJwApDVQhDfgLYsIuUDJiqJzH2DfORN5tiu+Ie2iBLrzEG34t4Rf465cigqg==")
_GLYPHS = tuple(f"dist/fonts/glyphicons-halflings-regular.{ext}" for ext in ("eot", "svg", "ttf", "woff"))

# Every CDN file asv 0.6.6's index.html loads. flot's npm package ships the unminified 0.8.3 sources (cdnjs
# serves a minified build of the same release).
WEB_ASSETS = (
    WebAsset("https://code.jquery.com/jquery-3.3.1.min.js", _JQUERY, "dist/jquery.min.js"),
    WebAsset("https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.min.js", _FLOT, "jquery.flot.js"),
    WebAsset("https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.time.min.js", _FLOT,
             "jquery.flot.time.js"),
    WebAsset("https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.selection.min.js", _FLOT,
             "jquery.flot.selection.js"),
    WebAsset("https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.categories.min.js", _FLOT,
             "jquery.flot.categories.js"),
    WebAsset("https://cdn.jsdelivr.net/npm/flot-orderbars@1.0.0/js/jquery.flot.orderBars.js", _ORDERBARS,
             "js/jquery.flot.orderBars.js"),
    WebAsset("https://cdnjs.cloudflare.com/ajax/libs/stupidtable/1.0.1/stupidtable.min.js", _STUPIDTABLE,
             "stupidtable.min.js"),
    WebAsset("https://cdnjs.cloudflare.com/ajax/libs/blueimp-md5/2.19.0/js/md5.min.js", _MD5, "js/md5.min.js"),
    WebAsset("https://cdn.jsdelivr.net/npm/bootstrap@3.1.1/dist/js/bootstrap.min.js", _BOOTSTRAP,
             "dist/js/bootstrap.min.js"),
    WebAsset("https://cdn.jsdelivr.net/npm/bootstrap@3.1.1/dist/css/bootstrap.min.css", _BOOTSTRAP,
             "dist/css/bootstrap.min.css", also=_GLYPHS),
)
LICENSE_NAMES = ("LICENSE", "LICENSE.txt", "LICENSE.md", "LICENSE-MIT", "MIT-LICENSE.txt")


class AssetError(Exception):
    """The offline copies of asv's web assets could not be made."""


def asset_cache_dir() -> Path:
    """Where npm tarballs are kept between runs: ``$PICKLEMATRIX_ASSET_CACHE`` or ``~/.cache/picklematrix/npm``."""
    if os.environ.get("PICKLEMATRIX_ASSET_CACHE"):
        return Path(os.environ["PICKLEMATRIX_ASSET_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "picklematrix" / "npm"


def _sri(data: bytes, algorithm: str) -> str:
    return f"{algorithm}-{base64.b64encode(hashlib.new(algorithm, data).digest()).decode()}"


def matches_integrity(data: bytes, integrity: str) -> bool:
    """``data`` matches one of the SRI hashes in ``integrity`` (sha256/384/512; others are not trusted)."""
    return any(_sri(data, token.split("-", 1)[0]) == token for token in integrity.split()
               if token.split("-", 1)[0] in ("sha256", "sha384", "sha512"))


DEFAULT_REGISTRY = "https://registry.npmjs.org"
REGISTRY_VARS = ("PICKLEMATRIX_NPM_REGISTRY", "npm_config_registry", "NPM_CONFIG_REGISTRY")
FETCH_TIMEOUT = 120


def registry_url() -> str:
    """The npm registry the tarballs come from: ``$PICKLEMATRIX_NPM_REGISTRY``, else npm's own setting in the
    environment (``npm_config_registry``), else the public registry."""
    for var in REGISTRY_VARS:
        if os.environ.get(var):
            return os.environ[var].rstrip("/")
    return DEFAULT_REGISTRY


def _get(url: str, accept: str) -> bytes:
    req = urllib.request.Request(url, headers={"Accept": accept, "User-Agent": "picklematrix"})
    with urllib.request.urlopen(req, timeout=FETCH_TIMEOUT) as resp:
        return resp.read()


def download_package(pkg: NpmPackage, registry: str | None = None) -> bytes:
    """The package's tarball from the npm registry, by Python (the registry's JSON API: no ``node``, no ``npm``):
    the version's document names the tarball; the caller checks it against the pin."""
    registry = registry or registry_url()
    # a scoped name is one path segment: @scope%2Fname
    meta_url = f"{registry}/{urllib.parse.quote(pkg.name, safe='@')}/{urllib.parse.quote(pkg.version)}"
    try:
        meta = json.loads(_get(meta_url, "application/json"))
        tarball = meta["dist"]["tarball"]
        return _get(tarball, "application/octet-stream")
    except (urllib.error.URLError, OSError, ValueError, KeyError, TypeError) as e:
        raise AssetError(f"cannot fetch {pkg.name}@{pkg.version} from the npm registry {registry} "
                         f"({type(e).__name__}: {e}); set PICKLEMATRIX_NPM_REGISTRY to a mirror, or put the "
                         f"tarball ({pkg.dirname}.tgz) in the asset cache") from None


def fetch_package(pkg: NpmPackage, cache: Path) -> Path:
    """The package's tarball, from the cache or the npm registry (fetched by Python), checked against its pin."""
    cache.mkdir(parents=True, exist_ok=True)
    tarball = cache / f"{pkg.name.replace('/', '-').lstrip('@')}-{pkg.version}.tgz"
    if tarball.exists() and matches_integrity(tarball.read_bytes(), pkg.integrity):
        return tarball
    data = download_package(pkg)
    if not matches_integrity(data, pkg.integrity):
        raise AssetError(f"{pkg.name}@{pkg.version} from the registry does not match its pinned integrity "
                         f"{pkg.integrity[:30]}… (got {_sri(data, 'sha512')[:30]}…): refusing to use it")
    fd, tmp = tempfile.mkstemp(prefix=f".{tarball.name}.", dir=cache)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, tarball)  # whole or not at all: another report may read the cache meanwhile
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tarball


def _extract(tarball: Path, members: list, dest: Path) -> None:
    with tarfile.open(tarball, "r:gz") as tar:
        names = {m.name: m for m in tar.getmembers() if m.isfile()}
        for member in members:
            info = names.get(f"package/{member}")
            if info is None:
                raise AssetError(f"{tarball.name} has no {member}")
            target = dest / member
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(tar.extractfile(info).read())


def vendor_assets(site: Path, cache: Path | None = None) -> dict:
    """Copy every pinned asset (and each package's licence) into ``<site>/vendor/<pkg>-<version>/``."""
    cache = cache or asset_cache_dir()
    vendor = site / "vendor"
    packages: dict[NpmPackage, list] = {}
    for asset in WEB_ASSETS:
        packages.setdefault(asset.package, []).extend([asset.path, *asset.also])
    manifest = {}
    for pkg, members in packages.items():
        tarball = fetch_package(pkg, cache)
        with tarfile.open(tarball, "r:gz") as tar:
            licenses = [m.name[len("package/"):] for m in tar.getmembers()
                        if m.isfile() and m.name[len("package/"):] in LICENSE_NAMES]
        _extract(tarball, sorted(set(members) | set(licenses)), vendor / pkg.dirname)
        manifest[pkg.dirname] = {"npm": f"{pkg.name}@{pkg.version}", "integrity": pkg.integrity,
                                 "files": sorted(set(members)), "licenses": licenses}
    (vendor / "ASSETS.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


_TAG = re.compile(r"<(script|link)\b([^>]*)>", re.IGNORECASE)
_ATTR = re.compile(r'([\w:-]+)\s*=\s*"([^"]*)"')


def localize_html(html: str, site: Path) -> tuple[str, list]:
    """Point every CDN ``<script>``/``<link>`` at the vendored copy. Returns (html, what was done)."""
    by_url = {a.url: a for a in WEB_ASSETS}
    done = []

    def fix(m):
        tag, attrs = m.group(1), m.group(2)
        attr = "src" if tag.lower() == "script" else "href"
        found = dict(_ATTR.findall(attrs))
        url = found.get(attr, "")
        if not re.match(r"(?i)^(https?:)?//", url):
            return m.group(0)
        if tag.lower() == "link" and found.get("rel", "").lower() not in ("stylesheet", "preload",
                                                                          "modulepreload", "icon"):
            return m.group(0)  # e.g. rel="alternate": a link, not something the page loads
        asset = by_url.get(url)
        if asset is None:
            raise AssetError(f"asv's page loads {url}, which has no pinned local copy: add it to WEB_ASSETS "
                             "in src/picklematrix/report/assets.py")
        local = f"vendor/{asset.package.dirname}/{asset.path}"
        data = (site / local).read_bytes()
        keep_sri = "integrity" in found and matches_integrity(data, found["integrity"])
        new = re.sub(rf'\b{attr}\s*=\s*"[^"]*"', f'{attr}="{local}"', attrs, count=1)
        for name in ("crossorigin", "referrerpolicy") + (() if keep_sri else ("integrity",)):
            new = re.sub(rf'\s+{name}(\s*=\s*"[^"]*")?', "", new)
        done.append({"url": url, "local": local, "integrity_checked": keep_sri})
        return f"<{tag}{new}>"

    return _TAG.sub(fix, html), done


def remote_loads(html: str) -> list[str]:
    """URLs a page would fetch from another host (scripts, stylesheets, images, frames)."""
    out = []
    for m in re.finditer(r"<(script|link|img|iframe|source|embed)\b([^>]*)>", html, re.IGNORECASE):
        attrs = dict(_ATTR.findall(m.group(2)))
        if m.group(1).lower() == "link" and attrs.get("rel", "").lower() in ("alternate", "canonical"):
            continue
        for name in ("src", "href"):
            if re.match(r"(?i)^(https?:)?//", attrs.get(name, "")):
                out.append(attrs[name])
    return out


def localize_site(site: Path, cache: Path | None = None) -> list:
    """Vendor every pinned asset into ``site`` and point asv's index.html at the copies. Returns what was done."""
    vendor_assets(site, cache)
    index = site / "index.html"
    html, done = localize_html(index.read_text(), site)
    index.write_text(html)
    return done
