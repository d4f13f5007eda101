// The Rust side's commands and events, typed with the generated bindings.

import { invoke } from "@tauri-apps/api/core";
import { listen } from "@tauri-apps/api/event";
import type { Card } from "./bindings/Card";
import type { Dashboard } from "./bindings/Dashboard";
import type { Failure } from "./bindings/Failure";
import type { HeldDetail } from "./bindings/HeldDetail";
import type { HeldItem } from "./bindings/HeldItem";
import type { Invitation } from "./bindings/Invitation";
import type { ListKey } from "./bindings/ListKey";
import type { LogLine } from "./bindings/LogLine";
import type { PasswordInfo } from "./bindings/PasswordInfo";
import type { PendingRequest } from "./bindings/PendingRequest";
import type { Pin } from "./bindings/Pin";
import type { Setting } from "./bindings/Setting";
import type { Setup } from "./bindings/Setup";
import type { Status } from "./bindings/Status";
import type { ImportResult } from "./bindings/ImportResult";
import type { SubscriberPage } from "./bindings/SubscriberPage";
import type { UiEvent } from "./bindings/UiEvent";

export const api = {
  status: () => invoke<Status>("status"),
  setup: (setup: Setup) => invoke<Status>("setup", { setup }),
  unlock: (passphrase: string) => invoke<Status>("unlock", { passphrase }),
  relayStart: () => invoke<Status>("relay_start"),
  dashboard: () => invoke<Dashboard>("dashboard"),
  activity: () => invoke<LogLine[]>("activity"),
  heldList: () => invoke<HeldItem[]>("held_list"),
  heldShow: (id: number) => invoke<HeldDetail>("held_show", { id }),
  heldDecide: (id: number, action: "approve" | "reject" | "discard", reason = "") =>
    invoke<string>("held_decide", { id, action, reason }),
  requests: () => invoke<PendingRequest[]>("requests"),
  requestApprove: (id: number) => invoke<string>("request_approve", { id }),
  requestRefuse: (id: number, reason: string) => invoke<void>("request_refuse", { id, reason }),
  subscriberPage: (search: string, page: number, perPage: number) =>
    invoke<SubscriberPage>("subscriber_page", { search, page, perPage }),
  subscriberFingerprint: (address: string) => invoke<string | null>("subscriber_fingerprint", { address }),
  subscribersImport: (keyring: string, csv: string, schleuder: string) =>
    invoke<ImportResult>("subscribers_import", { keyring, csv, schleuder }),
  subscriberAdd: (address: string, key: string) => invoke<void>("subscriber_add", { address, key }),
  subscriberReplaceKey: (address: string, old: string, key: string) =>
    invoke<number>("subscriber_replace_key", { address, old, key }),
  keyFingerprint: (key: string) => invoke<string>("key_fingerprint", { key }),
  subscriberRemove: (address: string) => invoke<void>("subscriber_remove", { address }),
  subscriberEnable: (address: string) => invoke<void>("subscriber_enable", { address }),
  invitation: () => invoke<Invitation>("invitation"),
  invitationSaveVcard: (path: string) => invoke<string>("invitation_save_vcard", { path }),
  certs: () => invoke<Pin[]>("certs"),
  certAccept: (endpoint: string, sha256: string) => invoke<Status>("cert_accept", { endpoint, sha256 }),
  settings: () => invoke<Setting[]>("settings"),
  settingSet: (key: string, value: string) => invoke<void>("setting_set", { key, value }),
  listKey: () => invoke<ListKey>("list_key"),
  pinAnswer: (pin: string | null) => invoke<void>("pin_answer", { pin }),
  keyExtend: (years: number) => invoke<ListKey>("key_extend", { years }),
  keyBackup: (path: string) => invoke<string>("key_backup", { path }),
  keyPublish: () => invoke<string>("key_publish"),
  keyToCard: (ident: string, passphrase: string, keepFile: boolean) =>
    invoke<ListKey>("key_to_card", { ident, passphrase, keepFile }),
  cards: () => invoke<Card[]>("cards"),
  passwords: () => invoke<PasswordInfo[]>("passwords"),
  passwordSet: (server: string, password: string, inFile: boolean) =>
    invoke<string>("password_set", { server, password, inFile }),
};

/** Calls `f` with every event the engine sends. */
export function onEvent(f: (e: UiEvent) => void): void {
  void listen<UiEvent>("conclave-event", (e) => f(e.payload));
}

/** A command's failure, whatever shape it came in. */
export function failure(e: unknown): Failure {
  if (e && typeof e === "object" && "message" in e && "kind" in e) return e as Failure;
  return { kind: "Unknown", message: String(e), certificate: null };
}
