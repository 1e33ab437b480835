"""test_package: the Debian package end to end. Builds it (tools/scripts/package.sh, reusing
build/release), installs it with dpkg -i, checks what it holds (linesman --version, the man page,
systemd-analyze verify on both units, the completion, the declared dependencies and conffiles),
then purges it: the machine is left as it was. Needs root; skipped when linesman was already
installed (the test would replace it) and in the ASan stage (the package holds the release
binary, already tested in the release stage)."""
import os
import pathlib
import re
import shutil
import subprocess

import pytest

import lsm

kRoot = pathlib.Path(__file__).resolve().parents[2]
kUnits = ["/lib/systemd/system/linesman.service", "/lib/systemd/system/linesman@.service"]


def run(argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, timeout=kw.pop("timeout", 120),
                          **kw)


def installed() -> bool:
    r = run(["dpkg-query", "-W", "-f=${Status}", "linesman"])
    return r.returncode == 0 and "installed" in r.stdout.split()


@pytest.fixture
def package(reg):
    if os.geteuid() != 0:
        pytest.skip("dpkg -i needs root")
    if os.environ.get("LINESMAN_SANITIZED"):
        pytest.skip("the package holds the release binary: tested in the release stage")
    for tool in ("dpkg", "cpack", "systemd-analyze", "man", "help2man"):
        lsm.need(tool)
    if installed() or os.path.exists("/usr/bin/linesman"):
        pytest.skip("linesman is already installed here; the test would replace it")
    r = run(["bash", str(kRoot / "tools/scripts/package.sh")], timeout=900)
    assert r.returncode == 0, r.stderr[-4000:]
    deb = pathlib.Path(r.stdout.strip().splitlines()[-1])
    assert re.fullmatch(r"linesman_\d+\.\d+\.\d+_amd64\.deb", deb.name), deb
    transcript = reg.tmp / "transcript.txt"
    yield deb, transcript
    # Leave the machine as it was: purge (package, conffiles, the logs the units made).
    r = run(["dpkg", "--purge", "linesman"])
    with open(transcript, "a") as f:
        f.write(f"$ dpkg --purge linesman\n{r.stdout}{r.stderr}")
    print(transcript.read_text())
    assert r.returncode == 0, r.stdout + r.stderr
    assert not installed()
    assert not os.path.exists("/usr/bin/linesman") and not os.path.exists("/etc/linesman")


def test_package_install_verify_remove(package, tmp_path):
    deb, transcript = package
    log = []

    def step(argv, ok=True, **kw):
        r = run(argv, **kw)
        log.append(f"$ {' '.join(argv)}\n{r.stdout}{r.stderr}")
        transcript.write_text("".join(log))
        if ok:
            assert r.returncode == 0, log[-1]
        return r

    # What the package declares, before installing it.
    info = step(["dpkg-deb", "--info", str(deb)]).stdout
    depends = re.search(r"^ Depends: (.*)$", info, re.M).group(1)
    for lib in ("libc6", "libssl3", "libspdlog1.10", "libyaml-cpp0.7"):
        assert lib in depends, depends
    files = step(["dpkg-deb", "--contents", str(deb)]).stdout
    for path in ("./usr/bin/linesman", "./lib/systemd/system/linesman.service",
                 "./lib/systemd/system/linesman@.service", "./etc/linesman/linesman.yaml",
                 "./etc/logrotate.d/linesman", "./usr/share/man/man1/linesman.1.gz",
                 "./usr/share/bash-completion/completions/linesman"):
        assert path in files, files

    step(["dpkg", "-i", str(deb)])
    assert installed()
    listed = step(["dpkg-query", "-W", "-f=${Conffiles}\n", "linesman"]).stdout
    assert "/etc/linesman/linesman.yaml" in listed and "/etc/logrotate.d/linesman" in listed

    version = step(["linesman", "--version"]).stdout
    assert re.match(r"linesman \d+\.\d+\.\d+\ncommit ([0-9a-f]{12}(-dirty)?|unknown)\n"
                    r"Asio 1\.\d+\.\d+\nOpenSSL 3\.", version), version
    assert shutil.which("linesman") == "/usr/bin/linesman"

    man = step(["man", "-w", "linesman"]).stdout.strip()
    assert man == "/usr/share/man/man1/linesman.1.gz", man
    page = step(["man", "-P", "cat", "linesman"], env={**os.environ, "MANWIDTH": "100"}).stdout
    assert "THE RECORD" in page and "first_reply" in page and "--access-log" in page, page

    # Both units clean, the template through an instance. systemd-analyze verify works without
    # systemd as PID 1; unknown keys and bad values are only warnings (exit 0), so a clean unit
    # is exit 0 with nothing said. Documentation=man:linesman(1) is checked too (man is here).
    r = step(["systemd-analyze", "verify", kUnits[0], "/lib/systemd/system/linesman@test.service"],
             env={**os.environ, "SYSTEMD_LOG_COLOR": "0"})
    assert r.stdout + r.stderr == "", r.stdout + r.stderr
    units = pathlib.Path(kUnits[0]).read_text()
    for key in ("DynamicUser=yes", "ProtectSystem=strict", "NoNewPrivileges=yes",
                "\nCapabilityBoundingSet=\n", "LimitNOFILE="):
        assert key in units, key
    # The check is meaningful: a broken copy of the unit is reported.
    broken = tmp_path / "linesman.service"
    broken.write_text(units.replace("ProtectSystem=strict", "ProtectSystem=stricter")
                      .replace("LimitNOFILE=", "LimitNOFILES="))
    r = step(["systemd-analyze", "verify", str(broken)], ok=False)
    assert "stricter" in r.stderr and "LimitNOFILES" in r.stderr, r.stderr

    # The logrotate snippet parses (debug mode: nothing is rotated; a private state file).
    if shutil.which("logrotate"):
        r = step(["logrotate", "--debug", "--state", str(tmp_path / "logrotate.state"),
                  "/etc/logrotate.d/linesman"])
        assert "error" not in r.stdout + r.stderr, r.stdout + r.stderr
        assert "/var/log/linesman/*.jsonl" in r.stderr, r.stderr

    # The completion offers subcommands, then a subcommand's flags from its --help.
    script = ("source /usr/share/bash-completion/completions/linesman; "
              "COMP_WORDS=(linesman ru); COMP_CWORD=1; _linesman; echo \"${COMPREPLY[@]}\"; "
              "COMP_WORDS=(linesman run --max-c); COMP_CWORD=2; _linesman; "
              "echo \"${COMPREPLY[@]}\"")
    out = step(["bash", "-c", script]).stdout.split("\n")
    assert out[0] == "run" and out[1] == "--max-connections", out
