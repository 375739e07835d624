"""Client certificates: checked at start naming the variable; TLS refusals are not retried."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from connectors.http import client_tls
from core.errors import Outcome, SettingsError
from core.outcomes import classify_transport, tls_failure
from core.settings import load_settings
from core.tls import ClientCertificate
from sandbox.arm_tls import ClientCertFiles, TlsFiles, issue_client_cert, make_tls_files

PREFIX = "WARDEN_ARM_CLIENT_CERT"


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A sandbox CA."""
    return make_tls_files(tmp_path_factory.mktemp("ca"))


@pytest.fixture
def issued(ca: TlsFiles, tmp_path: Path) -> ClientCertFiles:
    """A client certificate and its plain key."""
    return issue_client_cert(ca, tmp_path / "client")


def _cert(files: ClientCertFiles, **changes: object) -> ClientCertificate:
    values: dict[str, object] = {"cert_file": files.cert_path, "key_file": files.key_path}
    values.update(changes)
    return ClientCertificate.model_validate(values)


def test_tls_client_cert_good_files_no_problem(issued: ClientCertFiles) -> None:
    """A readable certificate with its own key has no problem and loads into a context."""
    cert = _cert(issued)
    assert cert.problems(PREFIX) == []
    assert isinstance(client_tls(True, cert), ssl.SSLContext)


def test_tls_client_cert_key_in_cert_file_accepted(issued: ClientCertFiles, tmp_path: Path) -> None:
    """Without KEY_FILE the key is read from CERT_FILE (one PEM with both)."""
    both = tmp_path / "both.pem"
    both.write_bytes(issued.cert_path.read_bytes() + issued.key_path.read_bytes())
    assert ClientCertificate(cert_file=both).problems(PREFIX) == []


def test_tls_client_cert_missing_file_names_cert_variable(
    issued: ClientCertFiles, tmp_path: Path
) -> None:
    """A certificate file that is not there names __CERT_FILE."""
    missing = tmp_path / "nope.pem"
    problems = _cert(issued, cert_file=missing).problems(PREFIX)
    assert problems == [f"{PREFIX}__CERT_FILE: cannot read {missing} (No such file or directory)"]


def test_tls_client_cert_unreadable_key_names_key_variable(
    issued: ClientCertFiles, tmp_path: Path
) -> None:
    """A key path that cannot be read (here a directory) names __KEY_FILE."""
    problems = _cert(issued, key_file=tmp_path).problems(PREFIX)
    assert len(problems) == 1 and problems[0].startswith(f"{PREFIX}__KEY_FILE: cannot read")


def test_tls_client_cert_not_pem_names_cert_variable(
    issued: ClientCertFiles, tmp_path: Path
) -> None:
    """A certificate file without a PEM certificate names __CERT_FILE."""
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate")
    assert _cert(issued, cert_file=junk).problems(PREFIX) == [
        f"{PREFIX}__CERT_FILE: {junk} holds no PEM certificate"
    ]


def test_tls_client_cert_other_key_names_key_variable(
    ca: TlsFiles, issued: ClientCertFiles, tmp_path: Path
) -> None:
    """A key that is not the certificate's names __KEY_FILE."""
    other = issue_client_cert(ca, tmp_path / "other")
    problems = _cert(issued, key_file=other.key_path).problems(PREFIX)
    assert problems == [
        f"{PREFIX}__KEY_FILE: the key in {other.key_path} does not belong to the certificate"
    ]


def test_tls_client_cert_encrypted_key_password_checked(ca: TlsFiles, tmp_path: Path) -> None:
    """An encrypted key opens with its password; none or a wrong one names __KEY_PASSWORD."""
    files = issue_client_cert(ca, tmp_path / "locked", password="correct horse")
    assert _cert(files, key_password=SecretStr("correct horse")).problems(PREFIX) == []
    missing = _cert(files).problems(PREFIX)
    wrong = _cert(files, key_password=SecretStr("battery staple")).problems(PREFIX)
    assert (
        missing[0].startswith(f"{PREFIX}__KEY_PASSWORD: the key in") and "encrypted" in missing[0]
    )
    assert wrong[0].startswith(f"{PREFIX}__KEY_PASSWORD: wrong password")


def test_tls_client_cert_password_for_plain_key_refused(issued: ClientCertFiles) -> None:
    """A password given for a key that has none is a mistake, named."""
    problems = _cert(issued, key_password=SecretStr("unneeded")).problems(PREFIX)
    assert problems[0].startswith(f"{PREFIX}__KEY_PASSWORD:") and "not encrypted" in problems[0]


def test_tls_settings_bad_client_cert_stops_start(
    issued: ClientCertFiles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From the environment, a missing key file stops start-up naming the variable."""
    monkeypatch.setenv("WARDEN_VAR_DIR", str(tmp_path))
    monkeypatch.setenv(f"{PREFIX}__CERT_FILE", str(issued.cert_path))
    monkeypatch.setenv(f"{PREFIX}__KEY_FILE", str(tmp_path / "gone-key.pem"))
    with pytest.raises(SettingsError, match=f"{PREFIX}__KEY_FILE: cannot read"):
        load_settings()


def test_tls_settings_client_cert_from_environment(
    issued: ClientCertFiles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The nested variables build the ARM client certificate."""
    monkeypatch.setenv("WARDEN_VAR_DIR", str(tmp_path))
    monkeypatch.setenv(f"{PREFIX}__CERT_FILE", str(issued.cert_path))
    monkeypatch.setenv(f"{PREFIX}__KEY_FILE", str(issued.key_path))
    assert load_settings().arm_client_cert == _cert(issued)


def test_tls_settings_key_file_without_cert_file_names_variable(
    issued: ClientCertFiles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A key without a certificate names the missing __CERT_FILE."""
    monkeypatch.setenv("WARDEN_VAR_DIR", str(tmp_path))
    monkeypatch.setenv(f"{PREFIX}__KEY_FILE", str(issued.key_path))
    with pytest.raises(SettingsError, match=f"{PREFIX}__CERT_FILE: Field required"):
        load_settings()


def test_tls_failure_alert_fails_at_once() -> None:
    """A TLS alert (a refused certificate) is configuration: FAIL, with its reason."""
    alert = ssl.SSLError(1, "[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] tlsv13 alert")
    alert.reason = "TLSV13_ALERT_CERTIFICATE_REQUIRED"
    wrapped = httpx.ConnectError("handshake")
    wrapped.__cause__ = alert
    assert tls_failure(wrapped) == "TLSV13_ALERT_CERTIFICATE_REQUIRED"
    assert classify_transport(wrapped) is Outcome.FAIL


def test_tls_failure_eof_or_reset_still_retried() -> None:
    """TLS ending early (EOF) or a reset may pass: RETRY."""
    eof = httpx.ConnectError("eof")
    eof.__cause__ = ssl.SSLEOFError(8, "EOF occurred in violation of protocol")
    assert tls_failure(eof) is None
    assert classify_transport(eof) is Outcome.RETRY
    assert classify_transport(httpx.ReadError("reset")) is Outcome.RETRY


def test_tls_failure_read_cut_by_timeout_still_retried() -> None:
    """A TLS read interrupted by the deadline (SSLWantReadError in the chain) is RETRY."""
    timeout = TimeoutError()
    timeout.__context__ = ssl.SSLWantReadError(2, "The operation did not complete (read)")
    assert tls_failure(timeout) is None
    assert classify_transport(timeout) is Outcome.RETRY
