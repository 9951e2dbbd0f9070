"""hf_client: huggingface_hub (the real client, scripts/hf-client.sh's venv) against what inferd's
hub/ did, for the hub_client suite (tests/integration/test_hub_client.c). The environment
names the cache (HF_HUB_CACHE), the mock Hub (HF_ENDPOINT) and HF_HUB_OFFLINE.

  hf_client.py find REPO COMMIT ORIGINALS FILE... [-- ABSENT...]
      Offline: snapshot_download(REPO, local_files_only) is the snapshot of COMMIT;
      hf_hub_download(REPO, FILE, local_files_only) of each FILE gives the bytes of
      ORIGINALS/FILE; each ABSENT file is not in the cache (LocalEntryNotFoundError);
      scan_cache_dir sees REPO once, at revision COMMIT with ref "main", holding exactly the
      FILEs, without warnings.
  hf_client.py fetch REPO
      Online: snapshot_download(REPO) into the cache; prints the snapshot's path.

The last line is "hf-client: ok" when every check held; a failed check raises."""

import os
import sys

import huggingface_hub
from huggingface_hub import hf_hub_download, scan_cache_dir, snapshot_download
from huggingface_hub.errors import LocalEntryNotFoundError


def same_bytes(a, b):
    with open(a, "rb") as x, open(b, "rb") as y:
        return x.read() == y.read()


def find(repo, commit, originals, files, absent):
    assert huggingface_hub.constants.HF_HUB_OFFLINE, "HF_HUB_OFFLINE is not set"
    cache = os.environ["HF_HUB_CACHE"]
    snap = snapshot_download(repo, local_files_only=True)
    want = os.path.join(cache, "models--" + repo.replace("/", "--"), "snapshots", commit)
    assert snap == want, f"snapshot_download: {snap}, not {want}"
    for f in files:
        path = hf_hub_download(repo, f, local_files_only=True)
        assert path == os.path.join(snap, f), f"hf_hub_download({f}): {path}"
        assert same_bytes(path, os.path.join(originals, f)), f"{f}: not the original bytes"
        assert same_bytes(os.path.join(snap, f), os.path.join(originals, f)), f
    for f in absent:
        try:
            hf_hub_download(repo, f, local_files_only=True)
        except LocalEntryNotFoundError:
            continue
        raise AssertionError(f"{f} was found in the cache, inferd did not fetch it")
    info = scan_cache_dir(cache)
    assert not info.warnings, f"scan_cache_dir warnings: {info.warnings}"
    repos = [r for r in info.repos if r.repo_id == repo]
    assert len(repos) == 1 and repos[0].repo_type == "model", f"scan_cache_dir: {info.repos}"
    revs = list(repos[0].revisions)
    assert [r.commit_hash for r in revs] == [commit], f"revisions: {revs}"
    assert set(revs[0].refs) == {"main"}, f"refs: {revs[0].refs}"
    got = sorted(str(f.file_path.relative_to(snap)) for f in revs[0].files)
    assert got == sorted(files), f"files: {got}"
    assert all(f.size_on_disk == os.path.getsize(os.path.join(originals, str(
        f.file_path.relative_to(snap)))) for f in revs[0].files), "blob sizes"
    print(f"hf-client: found {len(files)} files of {repo}@{commit[:12]} with huggingface_hub "
          f"{huggingface_hub.__version__}")


def fetch(repo):
    assert not huggingface_hub.constants.HF_HUB_OFFLINE, "HF_HUB_OFFLINE is set"
    print(snapshot_download(repo))


def main(argv):
    if len(argv) >= 5 and argv[1] == "find":
        rest = argv[5:]
        cut = rest.index("--") if "--" in rest else len(rest)
        find(argv[2], argv[3], argv[4], rest[:cut], rest[cut + 1:])
    elif len(argv) == 3 and argv[1] == "fetch":
        fetch(argv[2])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    print("hf-client: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
