//! The registered servers and their activated capabilities, in memory for every signed request and
//! mirrored in the store ([`crate::store::fasp`]) so that a restart forgets nothing. Removing a
//! registration takes it out of memory at once: the next request signed for it is refused.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use super::keys::{SigningKey, VerifyingKey};
use crate::store::Store;
use crate::store::fasp::{Activation, FaspServer};
use crate::{Error, Result};

/// A registered server with its keys parsed.
#[derive(Debug)]
pub struct Registration {
    /// As stored.
    pub server: FaspServer,
    /// The server's key: its requests are checked with it.
    pub verifying: VerifyingKey,
    /// Plaza's key for this server: responses are signed with it.
    pub signing: SigningKey,
}

impl Registration {
    fn from_stored(server: FaspServer) -> Result<Registration> {
        Ok(Registration {
            verifying: VerifyingKey::from_base64(&server.server_public_key)?,
            signing: SigningKey::from_base64(&server.own_private_key)?,
            server,
        })
    }
}

/// The registrations in force.
pub struct Registry {
    store: Store,
    servers: RwLock<HashMap<String, Arc<Registration>>>,
    active: RwLock<HashSet<Activation>>,
}

impl Registry {
    /// Loads what the store holds.
    pub async fn load(store: Store) -> Result<Registry> {
        let (servers, active) = Registry::read(&store).await?;
        Ok(Registry {
            store,
            servers: RwLock::new(servers),
            active: RwLock::new(active),
        })
    }

    /// Reads the registrations and activations again (another node changed them).
    pub async fn reload(&self) -> Result<()> {
        let (servers, active) = Registry::read(&self.store).await?;
        if let Ok(mut current) = self.servers.write() {
            *current = servers;
        }
        if let Ok(mut current) = self.active.write() {
            *current = active;
        }
        Ok(())
    }

    /// The registrations (those that cannot be used are logged and left out) and activations stored.
    async fn read(
        store: &Store,
    ) -> Result<(HashMap<String, Arc<Registration>>, HashSet<Activation>)> {
        let mut servers = HashMap::new();
        for server in store.fasp_servers().await? {
            let id = server.server_id.clone();
            match Registration::from_stored(server) {
                Ok(r) => {
                    servers.insert(id, Arc::new(r));
                }
                Err(e) => {
                    tracing::error!(server_id = %id, error = %e, "unusable FASP registration skipped")
                }
            }
        }
        let active = store.fasp_activations().await?.into_iter().collect();
        Ok((servers, active))
    }

    /// The registration of `server_id`.
    pub fn get(&self, server_id: &str) -> Option<Arc<Registration>> {
        self.servers.read().ok()?.get(server_id).cloned()
    }

    /// Every registration, oldest first.
    pub fn list(&self) -> Vec<Arc<Registration>> {
        let mut all: Vec<_> = self
            .servers
            .read()
            .map(|s| s.values().cloned().collect())
            .unwrap_or_default();
        all.sort_by_key(|r| (r.server.created_at, r.server.server_id.clone()));
        all
    }

    /// How many servers are registered.
    pub fn len(&self) -> usize {
        self.servers.read().map(|s| s.len()).unwrap_or(0)
    }

    /// Whether no server is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stores a registration and puts it in force.
    pub async fn add(&self, server: FaspServer) -> Result<Arc<Registration>> {
        let stored = self.store.add_fasp_server(server).await?;
        let registration = Arc::new(Registration::from_stored(stored)?);
        self.servers
            .write()
            .map_err(|_| Error::Unavailable("FASP registry lock".into()))?
            .insert(registration.server.server_id.clone(), registration.clone());
        Ok(registration)
    }

    /// Ends a registration (its activations with it); false when there was none.
    pub async fn remove(&self, server_id: &str) -> Result<bool> {
        let known = self
            .servers
            .write()
            .map_err(|_| Error::Unavailable("FASP registry lock".into()))?
            .remove(server_id)
            .is_some();
        if let Ok(mut active) = self.active.write() {
            active.retain(|a| a.server_id != server_id);
        }
        let stored = self.store.remove_fasp_server(server_id).await?;
        Ok(known || stored)
    }

    /// Whether `server_id` activated `capability` in version `major`.
    pub fn is_active(&self, server_id: &str, capability: &str, major: u32) -> bool {
        self.active.read().is_ok_and(|a| {
            a.contains(&Activation {
                server_id: server_id.to_string(),
                capability: capability.to_string(),
                major,
            })
        })
    }

    /// Activates or deactivates a capability version for a server, durably.
    pub async fn set_active(&self, activation: Activation, on: bool) -> Result<()> {
        self.store
            .set_fasp_activation(activation.clone(), on)
            .await?;
        let mut active = self
            .active
            .write()
            .map_err(|_| Error::Unavailable("FASP registry lock".into()))?;
        if on {
            active.insert(activation);
        } else {
            active.remove(&activation);
        }
        Ok(())
    }
}
