"""SshTrust: the program's own SSH key pair, and the public keys every node's admin user accepts.

Creates one `tls.PrivateKey` (ED25519). Its private half never leaves Pulumi state (a secret); its
public half is authorized on every node next to the operators' keys from `ssh.authorizedKeys`. Node
host keys are per node and live in `NodePool`.
"""

from __future__ import annotations

import pulumi
import pulumi_tls as tls

from config.model import SshConfig


class SshTrust(pulumi.ComponentResource):
    user: str
    """Admin user on every node."""
    private_key: pulumi.Output[str]
    """The program's private key, OpenSSH format (secret)."""
    public_key: pulumi.Output[str]
    """The program's public key, one authorized_keys line."""
    authorized_keys: pulumi.Output[list[str]]
    """The program's key first, then the operators' keys."""

    def __init__(self, name: str, ssh: SshConfig, opts: pulumi.ResourceOptions | None = None):
        super().__init__("cht-hosting:ssh:SshTrust", name, None, opts)
        key = tls.PrivateKey(f"{name}-program-key", algorithm="ED25519", opts=pulumi.ResourceOptions(parent=self))
        self.user = ssh.user
        self.private_key = pulumi.Output.secret(key.private_key_openssh)
        self.public_key = key.public_key_openssh.apply(str.strip)
        operators = [k.strip() for k in ssh.authorized_keys]
        self.authorized_keys = self.public_key.apply(lambda own: [own, *operators])
        # Registered so the engine records the component as complete; the private key stays out of outputs.
        self.register_outputs({"publicKey": self.public_key})
