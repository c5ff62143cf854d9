import { X509Certificate } from 'node:crypto';
import { generate } from 'selfsigned';

export interface SimCertificate {
  key: string;
  cert: string;
  /** SHA-256, colon-separated uppercase hex, as `pvenode cert info` prints it. */
  fingerprint: string;
}

/** A fresh self-signed certificate for 127.0.0.1/localhost, like a new Proxmox node's pve-ssl.pem. */
export async function createSelfSignedCertificate(commonName = 'pve-sim'): Promise<SimCertificate> {
  const pems = await generate(
    [
      { name: 'commonName', value: commonName },
      { name: 'organizationName', value: 'PVE Cluster Node (simulated)' },
    ],
    {
      keySize: 2048,
      notAfterDate: new Date(Date.now() + 365 * 86_400_000),
      algorithm: 'sha256',
      extensions: [
        { name: 'basicConstraints', cA: false },
        { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
        { name: 'extKeyUsage', serverAuth: true },
        {
          name: 'subjectAltName',
          altNames: [
            { type: 2, value: 'localhost' },
            { type: 7, ip: '127.0.0.1' },
          ],
        },
      ],
    },
  );
  return { key: pems.private, cert: pems.cert, fingerprint: new X509Certificate(pems.cert).fingerprint256 };
}
