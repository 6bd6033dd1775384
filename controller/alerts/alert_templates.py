"""Ready alert messages whose audio is rendered at start, so an alert never waits on synthesis."""

from __future__ import annotations

TEMPLATES: dict[str, tuple[str, str]] = {
    "flood": (
        "Cảnh báo lũ",
        "Khẩn cấp! Khẩn cấp! Nước lũ đang dâng cao. Đề nghị bà con khẩn trương di chuyển người, "
        "tài sản lên nơi cao ráo, tuyệt đối không qua sông, suối, ngầm tràn. "
        "Làm theo hướng dẫn của chính quyền địa phương.",
    ),
    "storm": (
        "Cảnh báo bão",
        "Khẩn cấp! Bão đang đổ bộ vào địa phương. Đề nghị bà con ở trong nhà kiên cố, chằng chống "
        "nhà cửa, không ra khỏi nhà khi mưa gió lớn, tàu thuyền không ra khơi.",
    ),
    "fire": (
        "Cảnh báo cháy",
        "Khẩn cấp! Đang có cháy tại địa phương. Đề nghị bà con giữ bình tĩnh, di chuyển ra khỏi "
        "khu vực cháy, gọi 114 và làm theo hướng dẫn của lực lượng phòng cháy chữa cháy.",
    ),
    "epidemic": (
        "Cảnh báo dịch bệnh",
        "Thông báo khẩn! Dịch bệnh đang lây lan tại địa phương. Đề nghị bà con hạn chế tụ tập, "
        "đeo khẩu trang, rửa tay thường xuyên và đến trạm y tế khi có triệu chứng.",
    ),
    "evacuation": (
        "Lệnh sơ tán",
        "Khẩn cấp! Đề nghị toàn bộ bà con sơ tán ngay đến nơi tập trung theo hướng dẫn của "
        "chính quyền. Mang theo giấy tờ tùy thân, thuốc men và nước uống. Giúp đỡ người già, "
        "trẻ em và người khuyết tật.",
    ),
    "all_clear": (
        "Thông báo hết nguy hiểm",
        "Thông báo: tình trạng khẩn cấp đã kết thúc. Bà con có thể trở lại sinh hoạt bình thường "
        "và tiếp tục theo dõi thông tin trên hệ thống truyền thanh.",
    ),
}
