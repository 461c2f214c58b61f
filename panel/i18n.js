// Labels in Chinese (the operators' language, the default) and English (installers, support).
// Grouped so one word can mean different things: "open" the button vs "open" the barrier.

export const LABELS = {
  zh: {
    ui: {
      title: "车道控制器", connecting: "连接中", live: "实时", reconnecting: "重连中", down: "未连接",
      login: "登录", logout: "退出", operator: "操作员", token: "令牌", health: "链路与队列", events: "最近事件",
      loopA: "前地感", loopB: "安全地感", barrier: "道闸", phase: "状态", plate: "车牌", bill: "应缴",
      payment: "支付方式", entry: "入场", display: "显示屏", reason: "原因（必填于放行未缴费车辆）",
      sim: "模拟", sendPlate: "识别车牌", scan: "扫付款码", occupied: "有车", clear: "无车",
      press: "踩下", release: "离开", free: "空余车位", inPark: "场内车辆", refunds: "应退款", paidOnline: "已在线支付，请勿收现金", outbox: "待上报", parked: "搁置", retrying: "重试中", held: "等待前序", lastRefusal: "平台最近拒绝",
      oldest: "最早", platform: "平台", mqtt: "远程管理 (MQTT)", serial: "串口设备", store: "存储",
      uptime: "运行时间", boxTime: "控制器时间", clockSynced: "时钟已同步", clockUnsynced: "时钟未同步",
      clockUnknown: "时钟同步未知", offset: "与本机相差", notConfigured: "未配置", up: "正常", downLink: "中断",
      probing: "探测中", ok: "正常", alarms: "告警", warnings: "警告", none: "无", version: "版本",
      needLogin: "请先登录（操作员与令牌）", readNeedsLogin: "此处查看状态需要登录", wrongToken: "令牌错误",
      cannotCheck: "无法验证令牌", done: "已执行", refused: "被拒绝", reasonNeeded: "放行未缴费车辆需填写原因",
      failed: "失败", tooManyPanels: "面板连接过多，请关闭其他页面", noEvents: "暂无事件", loggedInAs: "操作员",
      detectorFault: "地感故障", lane: "车道", language: "English",
    },
    command: { "cash-paid": "现金已收", open: "开闸", close: "落闸", cancel: "取消" },
    shift: {
      title: "班次", none: "当前无人值班", start: "上班", end: "交班", print: "打印报表", operator: "值班员", started: "上班时间",
      cash: "现金", cashLane: "现金 · ", releases: "人工放行", opens: "手动开闸", refundsOwed: "应退款", drawer: "钱箱应有",
      refunded: "已退款", noRefunds: "无应退款", lastEnded: "上一班", ended: "交班时间", carried: "前班", startedOk: "已上班", endedOk: "已交班",
    },
    direction: { in: "入口", out: "出口" },
    barrier: { closed: "已落杆", opening: "抬杆中", open: "已抬杆", closing: "落杆中", fault: "故障" },
    phase: {
      idle: "空闲", waiting: "等待车牌", plateOnly: "已识别，等待到位", deciding: "判定中", denied: "拒绝通行",
      awaitingPayment: "待缴费", allowed: "放行", leftA: "驶离前地感", passing: "通过中",
    },
    path: {
      free: "免费", prepaid: "已预付", platform: "平台支付", scanner: "扫码支付", cash: "现金", "cash-fallback": "现金（平台不可用）",
      remote: "远程放行", "remote-free": "远程免费放行", manual: "人工放行", attendant: "等待人工处理", "awaiting-payment": "待支付",
      deciding: "判定中", confirming: "等待平台确认", allowed: "已放行", denied: "已拒绝",
    },
    reason: {
      temporary: "临时车", "fixed-car": "固定车", "fee-due": "需缴费", passage: "车辆已通过", blacklisted: "黑名单",
      "lot-full": "车位已满", "no-plate": "无牌车", "already-in-park": "已在场内", "no-entry-record": "无入场记录",
      "internal-error": "内部错误", "backed-out": "倒车离开", cancelled: "已取消", manual: "人工", cash: "现金",
      "re-entry": "重复入场", confirm: "平台确认", expired: "已过期", timeout: "超时", refused: "被拒绝",
    },
    event: {
      "vehicle-arrived": "车辆到达", "plate-read": "识别车牌", decided: "判定", "barrier-opening": "抬杆",
      "barrier-opened": "道闸已开", "barrier-closing": "落杆", "barrier-closed": "道闸已关", "passage-started": "开始通过",
      passed: "已通过", "entry-allowed": "允许入场", "entry-denied": "拒绝入场", "vehicle-entered": "车辆入场",
      "vehicle-left": "车辆出场", "fee-due": "应缴费", "awaiting-payment": "等待支付", payment: "收费",
      "cash-fallback": "转现金", "attendant-command": "人工操作", scan: "扫码", "scan-refused": "扫码被拒",
      "scan-failed": "扫码失败", "no-entry-record": "无入场记录", "blacklisted-at-exit": "黑名单车辆出场",
      "decision-failed": "判定失败", "remote-control": "远程控制", "plate-fuzzy-matched": "模糊匹配车牌",
      "stay-clamped": "停车时长异常", "duplicate-read": "重复识别", "plate-ignored": "忽略识别", "backed-out": "倒车离开",
      settled: "已结算", "plate-timeout": "等待车牌超时", tailgated: "跟车", tailgate: "跟车通过", cancelled: "已取消", expired: "已过期",
      "unexpected-vehicle": "意外车辆", "manual-open": "手动开闸", "manual-close": "手动落闸", "cash-confirm-pressed": "现金确认按钮",
      "detector-fault": "地感故障", "detector-recovered": "地感恢复", "barrier-reopened": "道闸重新抬起", "barrier-fault": "道闸故障",
      "camera-offline-read": "相机离线记录", prepayment: "场内预付", "remote-cancel": "远程取消", "stay-replaced": "停车记录替换",
      "scan-ignored": "忽略扫码", "entry-confirm-unreachable": "平台确认不可达",
      "settled-earlier": "已缴费再次出场", "settled-earlier-expired": "缴费已超时，补缴", "payment-recovered": "重启后确认已缴费",
      "settled-stay-finished": "重启后补记出场", "settled-stay-resumed": "补记出场后恢复停车记录",
      "late-payment": "平台迟到确认已支付", "bill-reasked": "重新询问平台", "cash-check": "收现前询问平台", "cash-blind": "平台不可达，收现金",
      "cash-refused": "已在线支付，拒收现金", "double-payment": "重复支付，应退款", "late-platform-payment": "放行后平台已支付",
    },
  },
  en: {
    ui: {
      title: "Lane controller", connecting: "connecting", live: "live", reconnecting: "reconnecting", down: "disconnected",
      login: "Log in", logout: "Log out", operator: "operator", token: "token", health: "Links and queue", events: "Recent events",
      loopA: "Arming loop", loopB: "Safety loop", barrier: "Barrier", phase: "State", plate: "Plate", bill: "Due",
      payment: "Payment", entry: "Entry", display: "Display", reason: "reason (required to release an unpaid car)",
      sim: "Simulator", sendPlate: "Send plate", scan: "Scan pay code", occupied: "car", clear: "clear",
      press: "press", release: "release", free: "Free spaces", inPark: "In the lot", refunds: "Refunds owed", paidOnline: "paid online (已在线支付): take no cash", outbox: "Outbox", parked: "parked", retrying: "retrying", held: "held", lastRefusal: "last refusal",
      oldest: "oldest", platform: "Platform", mqtt: "Fleet (MQTT)", serial: "Serial devices", store: "Store",
      uptime: "Uptime", boxTime: "Box time", clockSynced: "clock synced", clockUnsynced: "clock NOT synced",
      clockUnknown: "clock sync unknown", offset: "off from this computer by", notConfigured: "not configured", up: "up", downLink: "down",
      probing: "probing", ok: "ok", alarms: "alarms", warnings: "warnings", none: "none", version: "Version",
      needLogin: "Log in first (operator and token)", readNeedsLogin: "Log in to see the status from here", wrongToken: "wrong token",
      cannotCheck: "cannot check the token", done: "done", refused: "refused", reasonNeeded: "A reason is required to release an unpaid car",
      failed: "failed", tooManyPanels: "Too many panels open; close one", noEvents: "no events yet", loggedInAs: "operator",
      detectorFault: "loop fault", lane: "Lane", language: "中文",
    },
    command: { "cash-paid": "Cash received", open: "Open", close: "Close", cancel: "Cancel" },
    shift: {
      title: "Shift", none: "No shift open", start: "Start shift", end: "End shift", print: "Printable report", operator: "Attendant", started: "Started",
      cash: "Cash", cashLane: "Cash · ", releases: "Hand releases", opens: "Hand opens", refundsOwed: "Refunds owed", drawer: "Drawer should hold",
      refunded: "Refunded", noRefunds: "no refunds owed", lastEnded: "Last shift", ended: "Ended", carried: "earlier shift", startedOk: "shift started", endedOk: "shift ended",
    },
    direction: { in: "entry", out: "exit" },
    barrier: { closed: "closed", opening: "opening", open: "open", closing: "closing", fault: "FAULT" },
    phase: {
      idle: "idle", waiting: "waiting for plate", plateOnly: "plate read, waiting for car", deciding: "deciding", denied: "denied",
      awaitingPayment: "awaiting payment", allowed: "allowed", leftA: "left arming loop", passing: "passing",
    },
    path: {
      free: "free", prepaid: "prepaid", platform: "platform payment", scanner: "pay code", cash: "cash", "cash-fallback": "cash (platform down)",
      remote: "released remotely", "remote-free": "released free remotely", manual: "released by hand", attendant: "attendant needed",
      "awaiting-payment": "awaiting payment", deciding: "deciding", confirming: "platform confirming", allowed: "allowed", denied: "denied",
    },
    reason: {
      temporary: "temporary car", "fixed-car": "fixed car", "fee-due": "fee due", passage: "car passed", blacklisted: "blacklisted",
      "lot-full": "lot full", "no-plate": "no plate", "already-in-park": "already in the lot", "no-entry-record": "no entry record",
      "internal-error": "internal error", "backed-out": "backed out", cancelled: "cancelled", manual: "by hand", cash: "cash",
      "re-entry": "re-entry", confirm: "platform confirmation", expired: "expired", timeout: "timed out", refused: "refused",
    },
    event: {
      "vehicle-arrived": "car arrived", "plate-read": "plate read", decided: "decided", "barrier-opening": "barrier opening",
      "barrier-opened": "barrier open", "barrier-closing": "barrier closing", "barrier-closed": "barrier closed", "passage-started": "passing",
      passed: "passed", "entry-allowed": "entry allowed", "entry-denied": "entry denied", "vehicle-entered": "entered",
      "vehicle-left": "left", "fee-due": "fee due", "awaiting-payment": "awaiting payment", payment: "payment",
      "cash-fallback": "cash fallback", "attendant-command": "attendant", scan: "code scanned", "scan-refused": "scan refused",
      "scan-failed": "scan failed", "no-entry-record": "no entry record", "blacklisted-at-exit": "blacklisted car at exit",
      "decision-failed": "decision failed", "remote-control": "remote control", "plate-fuzzy-matched": "plate fuzzy-matched",
      "stay-clamped": "stay clamped", "duplicate-read": "duplicate read", "plate-ignored": "read ignored", "backed-out": "backed out",
      settled: "settled", "plate-timeout": "no plate in time", tailgated: "tailgated", tailgate: "tailgate", cancelled: "cancelled", expired: "expired",
      "unexpected-vehicle": "unexpected vehicle", "manual-open": "manual open", "manual-close": "manual close", "cash-confirm-pressed": "cash button pressed",
      "detector-fault": "loop fault", "detector-recovered": "loop recovered", "barrier-reopened": "barrier reopened", "barrier-fault": "barrier FAULT",
      "camera-offline-read": "camera offline read", prepayment: "prepaid in the lot", "remote-cancel": "remote cancel", "stay-replaced": "stay replaced",
      "scan-ignored": "scan ignored", "entry-confirm-unreachable": "platform confirmation unreachable",
      "settled-earlier": "paid earlier, leaving", "settled-earlier-expired": "paid earlier, grace over", "payment-recovered": "payment confirmed after restart",
      "settled-stay-finished": "exit recorded after restart", "settled-stay-resumed": "stay resumed after a recorded exit",
      "late-payment": "paid online (late answer)", "bill-reasked": "bill asked again", "cash-check": "platform asked before cash", "cash-blind": "cash taken, platform unreachable",
      "cash-refused": "cash refused: paid online", "double-payment": "PAID TWICE: refund owed", "late-platform-payment": "paid online after a release",
    },
  },
};

/** A translator for one language; unknown keys show as themselves (new event types still show). */
export function translator(lang) {
  const table = LABELS[lang] ?? LABELS.zh;
  return (group, key) => {
    const value = table[group]?.[key];
    return typeof value === "string" ? value : String(key ?? "");
  };
}
