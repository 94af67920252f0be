//! AWS adapters of AlertResponder: the ports of `alertresponder-core` on DynamoDB
//! ([`dynamo::DynamoStore`]), SNS ([`sns::SnsTaskBus`], [`sns::SnsReportBus`]), Step
//! Functions ([`sfn::SfnScheduler`]) and Lambda ([`lambda::LambdaInspector`],
//! [`lambda::LambdaReviewer`]); configuration from the environment ([`config`]); and
//! the Lambda-edge handlers the six binaries run ([`handlers`]).

pub mod config;
pub mod error;
pub mod eventbridge;
#[cfg(feature = "testing")]
pub mod testing;

pub use config::StackConfig;
pub use error::AwsError;
pub mod dynamo;
pub mod handlers;
pub mod lambda;
pub mod sfn;
pub mod sns;
pub mod stack;
