use filevine_gateway_example::Client;
use filevine_identity_ext::api::FilevineUser;
use filevine_identity_ext::{FilevineApi, TokenProvider};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // FILEVINE_PAT, FILEVINE_CLIENT_ID, FILEVINE_CLIENT_SECRET, FILEVINE_REGION.
    let provider = TokenProvider::from_env()?;
    let user = FilevineUser { org_id: 42, user_id: 1001 };
    let api = FilevineApi::new(provider)?.with_user(user);
    let client = Client::from_api(&api)?;
    let project = client.get_project(7).await?.into_inner();
    println!("{}", project.name);
    Ok(())
}
