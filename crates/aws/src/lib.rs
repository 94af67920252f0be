//! AWS adapters of AlertResponder: the ports of `alertresponder-core` on DynamoDB
//! ([`dynamo::DynamoStore`]), SNS ([`sns::SnsTaskBus`], [`sns::SnsReportBus`]), Step
//! Functions ([`sfn::SfnScheduler`]) and Lambda ([`lambda::LambdaInspector`],
//! [`lambda::LambdaReviewer`]); configuration from the environment ([`config`],
//! validated by core's `Settings::validate`; the plugin sections of `alertresponder.toml`
//! read from S3 at cold start: [`config_file`]); a function's pipeline assembled from it
//! ([`stack`], whose error sink is the error table then the error topic:
//! [`stack::TableThenTopic`]); the EventBridge events the receptor takes (GuardDuty
//! findings: [`eventbridge`]; delay executions that closed without success:
//! [`execution_events`]); the Lambda-edge handlers the five binaries run
//! ([`handlers`]); and the fan-out's automatic quarantine of EC2 instances, with its
//! release ([`quarantine`]).

pub mod config;
pub mod config_file;
pub mod error;
pub mod eventbridge;
pub mod execution_events;

pub use config::StackConfig;
pub use error::AwsError;
pub mod dynamo;
pub mod handlers;
pub mod lambda;
pub mod quarantine;
pub mod sfn;
pub mod sns;
pub mod stack;
