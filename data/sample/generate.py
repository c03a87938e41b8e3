"""Write the shipped sample set (data/sample/train.txt, dev.txt) in the NLPCC 2018 Task 4 format.

Templates and entity lists are written for this project (not taken from the NLPCC corpus). The
sample covers every intent and slot type, digits, Latin words and ASR corrections (`heard||fixed`),
so that the main command runs on a fresh clone. Usage: python data/sample/generate.py
"""
import os
import random

SONGS = ["花心", "稻香", "晴天", "七里香", "后来", "演员", "平凡之路", "夜曲", "青花瓷", "小幸运", "光年之外",
         "shape of you", "yesterday", "let it go", "hello", "2002年的第一场雪", "1234567"]
SINGERS = ["周华健", "周杰伦", "刘德华", "王菲", "陈奕迅", "邓紫棋", "林俊杰", "张学友", "taylor swift",
           "beyond", "adele", "s.h.e", "tfboys"]
THEMES = ["dj", "经典老歌", "网络歌曲", "儿歌", "车载音乐"]
STYLES = ["摇滚", "民谣", "爵士", "流行", "rap"]
AGES = ["八零后", "九十年代", "70后", "老"]
TOPLISTS = ["热门", "排行榜", "新歌榜", "top10"]
EMOTIONS = ["伤感", "开心", "安静", "激情"]
LANGUAGES = ["英文", "粤语", "日语", "韩语"]
INSTRUMENTS = ["钢琴", "吉他", "小提琴", "二胡"]
SCENES = ["开车", "睡前", "运动", "下雨天"]
DESTINATIONS = ["北京西站", "天安门", "人民广场", "首都机场t3航站楼", "中关村大街1号", "上海虹桥火车站",
                "世纪公园", "第一人民医院", "万达广场", "7天酒店", "kfc"]
CUSTOM_DEST = ["家", "公司", "单位", "学校"]
ORIGINS = ["这里", "公司", "北京南站", "小区门口"]
PHONES = ["18866668888", "13912345678", "10086", "110", "020-88889999", "95588"]
CONTACTS = ["张三", "李四", "王老师", "妈妈", "老婆", "小明", "jack", "陈总"]
ASR = [("song", "什话", "神话"), ("singer", "周节论", "周杰伦"), ("song", "凉凉的", "凉凉"),
       ("destination", "天按门", "天安门"), ("contact_name", "张山", "张三")]

T = {
    "music.play": [
        "来一首<singer>{singer}</singer>的<song>{song}</song>", "播放<song>{song}</song>",
        "我想听<singer>{singer}</singer>的歌", "放一首<style>{style}</style>音乐",
        "来点<theme>{theme}</theme>", "播放<age>{age}</age>的歌", "来一首<toplist>{toplist}</toplist>歌曲",
        "放点<emotion>{emotion}</emotion>的歌", "播放<language>{language}</language>歌",
        "来一段<instrument>{instrument}</instrument>曲", "放一些适合<scene>{scene}</scene>听的歌",
        "<singer>{singer}</singer>的<song>{song}</song>", "播放歌曲<song>{song}</song>",
    ],
    "music.pause": ["暂停", "暂停播放", "先别放了", "停一下音乐"],
    "music.prev": ["上一首", "播放上一首歌", "切回上一首"],
    "music.next": ["下一首", "换一首", "切歌", "播放下一首"],
    "navigation.navigation": [
        "导航到<destination>{destination}</destination>", "去<destination>{destination}</destination>",
        "带我去<destination>{destination}</destination>", "我要回<custom_destination>{custom}</custom_destination>",
        "导航去<custom_destination>{custom}</custom_destination>",
        "从<origin>{origin}</origin>到<destination>{destination}</destination>怎么走",
    ],
    "navigation.open": ["打开导航", "开启地图", "打开高德地图"],
    "navigation.start_navigation": ["开始导航", "出发吧", "开始"],
    "navigation.cancel_navigation": ["取消导航", "退出导航", "关闭导航", "不导航了"],
    "phone_call.make_a_phone_call": [
        "打电话给<contact_name>{contact}</contact_name>", "给<contact_name>{contact}</contact_name>打个电话",
        "打电话给<phone_num>{phone}</phone_num>", "拨打<phone_num>{phone}</phone_num>",
        "呼叫<contact_name>{contact}</contact_name>", "打电话",
    ],
    "phone_call.cancel": ["取消拨打", "挂断电话", "不打了"],
    "OTHERS": ["今天天气怎么样", "你好", "讲个笑话", "现在几点了", "ok", "我是1个", "打开空调", "哈哈哈", "谢谢"],
}


def fill(template, rng):
    return template.format(
        song=rng.choice(SONGS), singer=rng.choice(SINGERS), theme=rng.choice(THEMES), style=rng.choice(STYLES),
        age=rng.choice(AGES), toplist=rng.choice(TOPLISTS), emotion=rng.choice(EMOTIONS),
        language=rng.choice(LANGUAGES), instrument=rng.choice(INSTRUMENTS), scene=rng.choice(SCENES),
        destination=rng.choice(DESTINATIONS), custom=rng.choice(CUSTOM_DEST), origin=rng.choice(ORIGINS),
        phone=rng.choice(PHONES), contact=rng.choice(CONTACTS))


def strip_tags(annotated):
    import re
    return re.sub(r"<([a-z_]+)>(.*?)</\1>", lambda m: m.group(2).split("||")[0], annotated)


def make(n, seed):
    rng = random.Random(seed)
    intents = list(T)
    lines = []
    for k in range(n):
        intent = intents[k % len(intents)] if k < 3 * len(intents) else rng.choice(intents * 2 + ["music.play"] * 6
                                                                                 + ["navigation.navigation"] * 4
                                                                                 + ["phone_call.make_a_phone_call"] * 3
                                                                                 + ["OTHERS"] * 4)
        templates = T[intent]
        annotated = fill(templates[(k // len(intents)) % len(templates)] if k < 3 * len(intents)
                         else rng.choice(templates), rng)
        lines.append((intent, annotated))
    # every template at least once, then ASR-corrected lines
    for intent, templates in T.items():
        for t in templates:
            lines.append((intent, fill(t, rng)))
    for slot, heard, fixed in ASR:
        intent = {"song": "music.play", "singer": "music.play", "destination": "navigation.navigation",
                  "contact_name": "phone_call.make_a_phone_call"}[slot]
        prefix = {"song": "播放", "singer": "我想听", "destination": "导航到", "contact_name": "打电话给"}[slot]
        lines.append((intent, f"{prefix}<{slot}>{heard}||{fixed}</{slot}>"))
    rng.shuffle(lines)
    out, session = [], 100000 + seed * 1000
    for k, (intent, annotated) in enumerate(lines):
        if k % 4 == 0:
            if out:
                out.append("")
            session += 1
        out.append(f"{session}\t{strip_tags(annotated)}\t{intent}\t{annotated}")
    return out


if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    for name, n, seed in (("train.txt", 320, 1), ("dev.txt", 60, 2)):
        with open(os.path.join(here, name), "w", encoding="utf-8") as f:
            f.write("\n".join(make(n, seed)) + "\n")
        print("wrote", os.path.join(here, name))
