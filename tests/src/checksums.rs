//! S3 checksums as the AWS SDK for Rust names them, for the checksum tests.

use aws_sdk_s3::types::ChecksumAlgorithm as SdkAlg;
use twofold::s3::checksum::ChecksumAlgorithm;

/// The SDK's name of algorithm `a`.
pub fn sdk_alg(a: ChecksumAlgorithm) -> SdkAlg {
    match a {
        ChecksumAlgorithm::Crc32 => SdkAlg::Crc32,
        ChecksumAlgorithm::Crc32c => SdkAlg::Crc32C,
        ChecksumAlgorithm::Crc64Nvme => SdkAlg::Crc64Nvme,
        ChecksumAlgorithm::Sha1 => SdkAlg::Sha1,
        ChecksumAlgorithm::Sha256 => SdkAlg::Sha256,
    }
}

/// The checksum of algorithm `$a` in an SDK output (PutObject, GetObject, HeadObject,
/// UploadPart, CopyPartResult, CompleteMultipartUpload, GetObjectAttributes' Checksum...),
/// as an `Option<String>`.
#[macro_export]
macro_rules! checksum_of {
    ($out:expr, $a:expr) => {
        match $a {
            twofold::s3::checksum::ChecksumAlgorithm::Crc32 => $out.checksum_crc32(),
            twofold::s3::checksum::ChecksumAlgorithm::Crc32c => $out.checksum_crc32_c(),
            twofold::s3::checksum::ChecksumAlgorithm::Crc64Nvme => $out.checksum_crc64_nvme(),
            twofold::s3::checksum::ChecksumAlgorithm::Sha1 => $out.checksum_sha1(),
            twofold::s3::checksum::ChecksumAlgorithm::Sha256 => $out.checksum_sha256(),
        }
        .map(str::to_owned)
    };
}
