//! The domain's status enums as database values: stored as their snake_case names in TEXT
//! columns (the migrations' CHECK constraints list the same names), read back typed, so a
//! status the code does not know is an error at the boundary and never a string further in.

use crate::domain::identity::VerificationStatus;
use crate::domain::lifecycle::{
    CertificateStatus, ContractStatus, EntryStatus, Hold, PermitStatus, RegistrationStatus,
    UnitStatus,
};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::{Decode, Encode, Postgres, Sqlite, Type};

macro_rules! text_enum {
    ($($t:ty),+ $(,)?) => {$(
        impl Type<Sqlite> for $t {
            fn type_info() -> <Sqlite as sqlx::Database>::TypeInfo {
                <str as Type<Sqlite>>::type_info()
            }
            fn compatible(ty: &<Sqlite as sqlx::Database>::TypeInfo) -> bool {
                <String as Type<Sqlite>>::compatible(ty)
            }
        }
        impl Encode<'_, Sqlite> for $t {
            fn encode_by_ref(
                &self,
                buf: &mut <Sqlite as sqlx::Database>::ArgumentBuffer,
            ) -> Result<IsNull, BoxDynError> {
                <&str as Encode<Sqlite>>::encode(self.as_str(), buf)
            }
        }
        impl<'r> Decode<'r, Sqlite> for $t {
            fn decode(value: <Sqlite as sqlx::Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
                Ok(<&str as Decode<Sqlite>>::decode(value)?.parse::<$t>()?)
            }
        }
        impl Type<Postgres> for $t {
            fn type_info() -> <Postgres as sqlx::Database>::TypeInfo {
                <str as Type<Postgres>>::type_info()
            }
            fn compatible(ty: &<Postgres as sqlx::Database>::TypeInfo) -> bool {
                <String as Type<Postgres>>::compatible(ty)
            }
        }
        impl Encode<'_, Postgres> for $t {
            fn encode_by_ref(
                &self,
                buf: &mut <Postgres as sqlx::Database>::ArgumentBuffer,
            ) -> Result<IsNull, BoxDynError> {
                <&str as Encode<Postgres>>::encode(self.as_str(), buf)
            }
        }
        impl<'r> Decode<'r, Postgres> for $t {
            fn decode(value: <Postgres as sqlx::Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
                Ok(<&str as Decode<Postgres>>::decode(value)?.parse::<$t>()?)
            }
        }
    )+};
}

text_enum!(
    ContractStatus,
    RegistrationStatus,
    Hold,
    EntryStatus,
    CertificateStatus,
    UnitStatus,
    PermitStatus,
    VerificationStatus,
);
