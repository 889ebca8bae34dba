/* RemoveContainer's slow half: one background thread (the reaper) waits for each removed
 * container's monitor, unmounts its root filesystem and deletes its run directory and writable
 * layer, from the record that the call moved to the store's trash; start-up queues whatever
 * the trash still holds, so a removal a kill interrupted is finished and nothing leaks. */
#include "config.h"

#include "container-private.h"

#define RECORD "container.json"

/* One removal: what the record in the trash names, then the record itself. */
static void
reap_one (CrispContainerService *svc, CrispContainer *c)
{
  g_autoptr (GError) error = NULL;
  if (crisp_container_release (svc, c, FALSE, svc->reap_cancel, &error)
      && crisp_store_trash_remove (svc->store, c->id, svc->reap_cancel, &error))
    g_debug ("container '%s': removed", c->id);
  else if (g_cancellable_is_cancelled (svc->reap_cancel))
    g_message ("container '%s': its removal is finished at the next start", c->id);
  else
    g_warning ("container '%s': finishing its removal: %s; tried again at the next start", c->id,
               error->message);
}

static gpointer
reaper_main (gpointer data)
{
  CrispContainerService *svc = data;
  g_mutex_lock (&svc->lock);
  for (;;)
    {
      while (!svc->reaper_stop && g_queue_is_empty (&svc->reap_queue))
        g_cond_wait (&svc->reap_cond, &svc->lock);
      if (svc->reaper_stop)
        break;
      CrispContainer *c = g_queue_pop_head (&svc->reap_queue);
      g_mutex_unlock (&svc->lock);
      reap_one (svc, c);
      g_mutex_lock (&svc->lock);
      g_ptr_array_remove (svc->reaping, c);
      crisp_container_unref (c);
      g_cond_broadcast (&svc->reap_cond);
    }
  g_mutex_unlock (&svc->lock);
  return NULL;
}

/* Takes c. */
static void
enqueue (CrispContainerService *svc, CrispContainer *c)
{
  g_mutex_lock (&svc->lock);
  g_ptr_array_add (svc->reaping, crisp_container_ref (c));
  g_queue_push_tail (&svc->reap_queue, c);
  g_cond_broadcast (&svc->reap_cond);
  g_mutex_unlock (&svc->lock);
}

void
crisp_container_reaper_init (CrispContainerService *svc)
{
  g_queue_init (&svc->reap_queue);
  g_cond_init (&svc->reap_cond);
  svc->reaping = g_ptr_array_new_with_free_func ((GDestroyNotify) crisp_container_unref);
  svc->reap_cancel = g_cancellable_new ();
}

/* A container in the trash, from its record there, or from its id alone. */
static CrispContainer *
trashed_container (CrispContainerService *svc, const char *id)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) node = crisp_store_trash_load (svc->store, id, RECORD, &error);
  CrispContainer *c = node ? crisp_container_from_json (id, node, &error) : NULL;
  if (c != NULL)
    return c;
  g_message ("container '%s': its record in the trash is not readable (%s): removing what its "
             "id leads to",
             id, error->message);
  return crisp_container_new_lost (svc, id);
}

void
crisp_container_reaper_start (CrispContainerService *svc)
{
  g_autoptr (GPtrArray) ids = crisp_store_trash_list (svc->store);
  for (guint i = 0; i < ids->len; i++)
    {
      g_message ("container '%s': finishing an interrupted removal", (char *) ids->pdata[i]);
      enqueue (svc, trashed_container (svc, ids->pdata[i]));
    }
  svc->reaper = g_thread_new ("crisp-reaper", reaper_main, svc);
}

/* Waits at most timeout_ms for the queue to empty, the removal in progress included. */
static gboolean
drain (CrispContainerService *svc, int timeout_ms)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) timeout_ms * 1000;
  g_mutex_lock (&svc->lock);
  while (svc->reaping->len > 0 && g_cond_wait_until (&svc->reap_cond, &svc->lock, deadline))
    ;
  guint left = svc->reaping->len;
  g_mutex_unlock (&svc->lock);
  if (left > 0)
    g_message ("%u container removals still in progress after %d ms: finished at the next start",
               left, timeout_ms);
  return left == 0;
}

void
crisp_container_reaper_wait_monitors (CrispContainerService *svc, const char *pod_id,
                                      int timeout_ms)
{
  g_autoptr (GPtrArray) pod
      = g_ptr_array_new_with_free_func ((GDestroyNotify) crisp_container_unref);
  g_mutex_lock (&svc->lock);
  for (guint i = 0; i < svc->reaping->len; i++)
    {
      CrispContainer *c = svc->reaping->pdata[i];
      if (g_strcmp0 (c->pod_id, pod_id) == 0)
        g_ptr_array_add (pod, crisp_container_ref (c));
    }
  g_mutex_unlock (&svc->lock);
  for (guint i = 0; i < pod->len; i++)
    if (!crisp_container_wait_monitor (pod->pdata[i], timeout_ms))
      g_message ("container '%s': monitor %d still running after its removal",
                 ((CrispContainer *) pod->pdata[i])->id,
                 ((CrispContainer *) pod->pdata[i])->monitor_pid);
}

void
crisp_container_reaper_stop (CrispContainerService *svc, int timeout_ms)
{
  if (svc->reaping == NULL)
    return;
  if (svc->reaper != NULL)
    {
      drain (svc, timeout_ms);
      g_mutex_lock (&svc->lock);
      svc->reaper_stop = TRUE;
      g_cond_broadcast (&svc->reap_cond);
      g_mutex_unlock (&svc->lock);
      g_cancellable_cancel (svc->reap_cancel);
      g_thread_join (g_steal_pointer (&svc->reaper));
    }
  g_queue_clear_full (&svc->reap_queue, (GDestroyNotify) crisp_container_unref);
  g_clear_pointer (&svc->reaping, g_ptr_array_unref);
  g_clear_object (&svc->reap_cancel);
  g_cond_clear (&svc->reap_cond);
}

gboolean
crisp_container_remove_later (CrispContainerService *svc, CrispContainer *c, GError **error)
{
  /* Volumes staged for it come off now (a few lazy unmounts): once the call returns, the
   * images they showed are no longer in use and may be removed. */
  if (!crisp_container_unstage_mounts (svc, c->id, error))
    return FALSE;
  /* REMOVING first: from then on no save (crisp_container_save) recreates the record. */
  g_mutex_lock (&svc->lock);
  CrispContainerState was = c->state;
  c->state = CRISP_CONTAINER_REMOVING;
  g_mutex_unlock (&svc->lock);
  if (!crisp_store_retire (svc->store, c->id, error))
    {
      g_mutex_lock (&svc->lock);
      c->state = was;
      g_mutex_unlock (&svc->lock);
      return FALSE;
    }
  crisp_container_forget (svc, c);
  enqueue (svc, crisp_container_ref (c));
  return TRUE;
}
